// The built server on Keras models: the team's ensemble layout from S3 (no manifest), a restart
// from the cache, /health while a conversion runs, and a local Keras file that cannot be converted.
import { createHash } from 'node:crypto'
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import * as img from './fixtures/images.js'
import { form } from './helpers/app.js'
import { ENSEMBLE_KEY, ENSEMBLE_RESULTS_KEY, FACIAL_RESULTS, LAMBDA_H5, MINI_ENSEMBLE_H5, TEAM_LABELS } from './helpers/keras.js'
import { fakeS3, s3Env, scratchDir } from './helpers/s3.js'
import { spawnServer, waitReady } from './helpers/spawn-server.js'

interface Health {
  status: string
  reason?: string
  phase?: string
  model: { name: string, version: string, format: string, source: string, labels: string[], warnings: string[] }
  store: { cacheHits: number, downloadedBytes: number }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function timedHealth (url: string): Promise<{ ms: number, status: number, body: Health }> {
  const started = performance.now()
  const res = await fetch(`${url}/health`)
  const body = await res.json() as Health
  return { ms: performance.now() - started, status: res.status, body }
}

t.test('the team\'s ensemble shape from S3: converted at boot, 8 labels in order, analysed; a restart is a cache hit with no conversion', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('shine-skincare-models')
  await s3.put('shine-skincare-models', ENSEMBLE_KEY, await readFile(MINI_ENSEMBLE_H5))
  await s3.put('shine-skincare-models', ENSEMBLE_RESULTS_KEY, FACIAL_RESULTS)
  const env = { ...s3Env(s3.endpoint), S3_BUCKET: 'shine-skincare-models', S3_MODEL_KEY: ENSEMBLE_KEY, MODEL_DIR: await scratchDir(t) }

  const cold = await spawnServer(t, env)
  const seen = await waitReady(cold.url)
  const health = seen.at(-1)!.body as Health
  t.match(health, { status: 'ok', model: { name: 'best_facial_model', format: 'keras-h5', source: 's3', labels: TEAM_LABELS } })
  const h5Sha = createHash('sha256').update(await readFile(MINI_ENSEMBLE_H5)).digest('hex')
  t.equal(health.model.version, `sha256-${h5Sha.slice(0, 12)}`, 'no manifest: the .h5\'s content names the version')
  t.match(health.model.warnings, [/labels from facial_results\.json/])
  t.match(cold.output(), /"msg":"model converted to ONNX"/)

  const res = await fetch(`${cold.url}/api/v2/analyze/guest`, { method: 'POST', body: form(await img.jpeg({ width: 320, height: 240 })) })
  t.equal(res.status, 200)
  const body = await res.json() as { model: { version: string }, predictions: Array<{ label: string, confidence: number }> }
  t.same(body.predictions.map((p) => p.label).sort(), [...TEAM_LABELS].sort(), 'answers in the team\'s vocabulary')
  t.equal(body.model.version, health.model.version)
  t.ok(Math.abs(body.predictions.reduce((a, p) => a + p.confidence, 0) - 1) < 1e-4, 'the model\'s softmax is kept as it is')
  cold.child.kill('SIGTERM')
  t.equal((await cold.exited).code, 0)

  const warm = await spawnServer(t, env)
  const again = await waitReady(warm.url)
  t.match(again.at(-1)!.body, { status: 'ok', model: { source: 'cache', format: 'keras-h5', version: health.model.version, labels: TEAM_LABELS }, store: { cacheHits: 1, downloadedBytes: 0 } })
  t.notOk(again.some((s) => (s.body as Health).phase === 'converting'), 'never converting')
  t.notMatch(warm.output(), /model converted to ONNX/, 'no conversion')
  warm.child.kill('SIGTERM')
  t.equal((await warm.exited).code, 0)
})

t.test('/health answers while a local Keras file converts, about as fast as when idle; the conversion lands in MODEL_DIR', async (t) => {
  const user = await scratchDir(t)
  const modelPath = join(user, 'best_facial_model.h5')
  await copyFile(MINI_ENSEMBLE_H5, modelPath)
  await writeFile(join(user, 'facial_results.json'), FACIAL_RESULTS)
  const modelDir = await scratchDir(t)
  const server = await spawnServer(t, { MODEL_PATH: modelPath, MODEL_DIR: modelDir })
  const during: number[] = []
  let last = await timedHealth(server.url)
  while (last.status !== 200) {
    if (last.body.phase === 'converting') {
      t.match(last.body, { status: 'starting', reason: 'converting the model (keras-h5)' })
      during.push(last.ms)
    }
    last = await timedHealth(server.url)
  }
  t.match(last.body, { model: { source: 'local', format: 'keras-h5', labels: TEAM_LABELS } })
  const idle: number[] = []
  for (let i = 0; i < Math.max(during.length, 20); i++) idle.push((await timedHealth(server.url)).ms)
  const line = server.output().split('\n').find((l) => l.includes('"msg":"model converted to ONNX"'))
  const convertMs = (JSON.parse(line ?? '{}') as { ms?: number }).ms ?? 0
  t.comment(`/health during conversion: ${during.length} answers, median ${median(during).toFixed(2)} ms, max ${Math.max(...during).toFixed(2)} ms; idle median ${median(idle).toFixed(2)} ms; conversion ${convertMs.toFixed(0)} ms`)
  // On the main thread the conversion would have held every request until it ended: no answers.
  t.ok(during.length >= 3, `answered ${during.length} times while converting`)
  t.ok(median(during) < 5 * median(idle), 'median latency while converting stays within 5× idle')
  t.same(await readdir(user), ['best_facial_model.h5', 'facial_results.json'], 'nothing written beside the user\'s file')
  t.same((await readdir(join(modelDir, 'converted'))).length, 1)
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})

t.test('a local Keras file that cannot be converted: 503 error with the converter\'s reason, once', async (t) => {
  const modelDir = await scratchDir(t)
  const server = await spawnServer(t, { MODEL_PATH: LAMBDA_H5, MODEL_DIR: modelDir })
  let body: Health | undefined
  for (let i = 0; i < 400 && body?.status !== 'error'; i++) {
    body = await (await fetch(`${server.url}/health`)).json() as Health
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.match(body, { status: 'error', reason: /is a Lambda: it holds Python code .* never run/ })
  t.notMatch(body?.reason, /\n/)
  t.same(await readdir(join(modelDir, 'converted')), [], 'nothing half-written')
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})
