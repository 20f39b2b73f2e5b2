// /health with the S3 model store: download progress while starting, counters once ready,
// and the S3 error when a cached copy is served instead.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { startEngine } from '../../src/inference/engine.js'
import { StoreCounters } from '../../src/models/counters.js'
import { s3Store } from '../../src/models/s3-store.js'
import { Readiness } from '../../src/readiness.js'
import { writeTinyBundle } from '../helpers/model.js'
import { TEST_CREDENTIALS, fakeS3, publish, scratchDir } from '../helpers/s3.js'

async function appOn (t: Test, endpoint: string, modelKey: string, modelDir: string) {
  const config = loadConfig({ WORKERS: '1', LOG_LEVEL: 'silent', S3_BUCKET: 'models', S3_MODEL_KEY: modelKey, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: 'true', MODEL_DIR: modelDir, S3_RETRY_BASE_MS: '1', S3_MAX_ATTEMPTS: '2' })
  const readiness = new Readiness()
  readiness.store = new StoreCounters()
  const app = buildApp({ config, readiness })
  t.teardown(async () => await app.close())
  const store = s3Store({ s3: config.s3!, modelDir, tuning: config.modelStore, credentials: TEST_CREDENTIALS, counters: readiness.store })
  t.teardown(() => store.client.destroy())
  const engine = await startEngine(await store.resolve(), config, (p) => readiness.trackPool(p))
  readiness.ready(engine)
  return app
}

t.test('starting: 503 with download progress and the store counters', async (t) => {
  const readiness = new Readiness()
  readiness.store = new StoreCounters()
  const app = buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), readiness })
  t.teardown(async () => await app.close())
  readiness.store.cacheMisses = 1
  readiness.store.downloadedBytes = 1000
  readiness.starting('downloading the model', { downloadedBytes: 1000, totalBytes: 4000 })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), {
    status: 'starting',
    reason: 'downloading the model',
    model: { downloadedBytes: 1000, totalBytes: 4000 },
    store: { cacheHits: 0, cacheMisses: 1, downloadedBytes: 1000, retries: 0 }
  })
})

t.test('ready from S3, then from the cache: source and counters in /health', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const tiny = await writeTinyBundle(await scratchDir(t))
  const pushed = await publish(s3, await scratchDir(t), { bucket: 'models', prefix: 'tiny', version: 'v1', model: await readFile(tiny.modelPath) })
  const modelDir = await scratchDir(t)

  const cold = await (await appOn(t, s3.endpoint, pushed.modelKey, modelDir)).inject('/health')
  t.equal(cold.statusCode, 200)
  const body = cold.json()
  t.match(body, { status: 'ok', model: { name: 'tiny-test', version: 'v1', source: 's3' }, store: { cacheHits: 0, cacheMisses: 1, retries: 0, lastDownload: { bytes: Number, durationMs: Number, mbPerS: Number } } })
  t.ok(body.store.downloadedBytes >= pushed.bytes)
  t.equal(body.model.sourceError, undefined)

  const warm = (await (await appOn(t, s3.endpoint, pushed.modelKey, modelDir)).inject('/health')).json()
  t.match(warm, { model: { source: 'cache' }, store: { cacheHits: 1, cacheMisses: 0, downloadedBytes: 0 } })
  t.equal(warm.store.lastDownload, undefined)

  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  const offline = (await (await appOn(t, `http://127.0.0.1:${port}`, pushed.modelKey, modelDir)).inject('/health')).json()
  t.match(offline, { status: 'ok', model: { source: 'cache', sourceError: /^EndpointUnreachable: s3:\/\/models\/tiny\/v1\/model\.onnx/ }, store: { retries: 2 } })
})
