// The built server (`node dist/server.js`) with its model in a real S3-protocol server on loopback:
// cold boot from S3, restart from the cache, S3 down, and a missing key that appears later.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import t from 'tap'
import { writeTinyBundle } from './helpers/model.js'
import { fakeOnnx, fakeS3, publish, s3Env, scratchDir } from './helpers/s3.js'
import { spawnServer, waitReady } from './helpers/spawn-server.js'

interface Health {
  status: string
  reason?: string
  model: { name: string, version: string, source: string, sourceError?: string }
  store: { cacheHits: number, cacheMisses: number, downloadedBytes: number, retries: number, lastDownload?: { bytes: number } }
}

async function closedPort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

t.test('cold boot downloads from S3; a restart serves the verified cache; S3 down serves it with the error', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const tiny = await writeTinyBundle(await scratchDir(t))
  const pushed = await publish(s3, await scratchDir(t), { bucket: 'models', prefix: 'skin/tiny', version: '2026-01-01.1', model: await readFile(tiny.modelPath) })
  const env = { ...s3Env(s3.endpoint), S3_BUCKET: 'models', S3_MODEL_KEY: pushed.modelKey, MODEL_DIR: await scratchDir(t) }

  const cold = await spawnServer(t, env)
  const seen = await waitReady(cold.url)
  t.match(seen[0], { status: 503, body: { status: 'starting' } }, 'answers 503 starting while it downloads')
  const first = seen.at(-1)!.body as Health
  t.match(first, { status: 'ok', model: { name: 'tiny-test', version: '2026-01-01.1', source: 's3' }, store: { cacheMisses: 1, cacheHits: 0, retries: 0 } })
  t.ok(first.store.downloadedBytes >= pushed.bytes)
  t.match(cold.output(), /"msg":"model downloaded and verified"/)
  cold.child.kill('SIGTERM')
  t.equal((await cold.exited).code, 0)

  const warm = await spawnServer(t, env)
  const second = (await waitReady(warm.url)).at(-1)!.body as Health
  t.match(second, { status: 'ok', model: { source: 'cache', version: '2026-01-01.1' }, store: { cacheHits: 1, cacheMisses: 0, downloadedBytes: 0 } })
  t.equal(second.model.sourceError, undefined)
  warm.child.kill('SIGTERM')
  t.equal((await warm.exited).code, 0)

  const offline = await spawnServer(t, { ...env, S3_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, S3_RETRY_BASE_MS: '1' })
  const third = (await waitReady(offline.url)).at(-1)!.body as Health
  t.match(third, { status: 'ok', model: { source: 'cache', sourceError: /^EndpointUnreachable: s3:\/\/models\/skin\/tiny\/2026-01-01\.1\/model\.onnx: / } })
  offline.child.kill('SIGTERM')
  t.equal((await offline.exited).code, 0)
})

t.test('a missing key: 503 naming bucket and key, retried with backoff, served once it is pushed', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const server = await spawnServer(t, {
    ...s3Env(s3.endpoint), S3_BUCKET: 'models', S3_MODEL_KEY: 'late/v1/model.onnx', MODEL_DIR: await scratchDir(t), S3_RETRY_BASE_MS: '1', S3_RETRY_MAX_S: '0.3'
  })
  let body: Health | undefined
  for (let i = 0; i < 200 && body?.status !== 'error'; i++) {
    const res = await fetch(`${server.url}/health`)
    t.equal(res.status, 503)
    body = await res.json() as Health
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.match(body, { status: 'error', reason: /^NoSuchKey: s3:\/\/models\/late\/v1\/model\.onnx: no such key in the bucket \(check S3_MODEL_KEY\) \(attempt \d+; retrying in 1 s\)$/ })
  t.notMatch(body?.reason, /\n|at .*\.js/, 'no stack')

  const tiny = await writeTinyBundle(await scratchDir(t))
  await publish(s3, await scratchDir(t), { bucket: 'models', prefix: 'late', version: 'v1', model: await readFile(tiny.modelPath) })
  const ready = (await waitReady(server.url, 30_000)).at(-1)!.body as Health
  t.match(ready, { status: 'ok', model: { source: 's3', version: 'v1' } })
  t.equal(server.child.exitCode, null, 'the process never exited')
  t.match(server.output(), /"msg":"model failed to load; retrying"/)
  t.notMatch(server.output(), /"stack"/, 'S3 failures are logged without a stack')
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})

t.test('a verified download that ONNX Runtime cannot load is retried too, and logged with its stack', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  // ONNX's first two bytes, then junk: not a Keras file, so it goes to ONNX Runtime, which fails.
  await s3.put('models', 'junk/model.onnx', fakeOnnx(1000))
  const server = await spawnServer(t, {
    ...s3Env(s3.endpoint), S3_BUCKET: 'models', S3_MODEL_KEY: 'junk/model.onnx', MODEL_DIR: await scratchDir(t), S3_RETRY_MAX_S: '0.2'
  })
  let body: Health | undefined
  for (let i = 0; i < 400 && !/attempt 2;/.test(body?.reason ?? ''); i++) {
    body = await (await fetch(`${server.url}/health`)).json() as Health
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.match(body, { status: 'error', reason: /\(attempt 2; retrying in 1 s\)$/ })
  t.match(server.output(), /"msg":"model failed to load; retrying"/)
  t.match(server.output(), /"stack"/, 'an unexpected failure keeps its stack in the log')
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0, 'a shutdown between attempts exits cleanly')
})
