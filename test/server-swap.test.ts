// Live model replacement on the built server (`node dist/server.js`), its model in a real
// S3-protocol server on loopback: a push under steady upload traffic, a corrupt push, SIGHUP,
// polling, MODEL_SWAP=restart, and a local MODEL_PATH that changes.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { buildTinyClassifier } from '../scripts/onnx-builder.js'
import { jpeg } from './fixtures/images.js'
import { SKIN_LABELS, TINY_SIZE, writeTinyBundle } from './helpers/model.js'
import { cachedVersions, fakeOnnx, fakeS3, putLive, s3Env, scratchDir } from './helpers/s3.js'
import { healthOf, spawnServer, until, waitReady, type SpawnedServer } from './helpers/spawn-server.js'

interface Health {
  status: string
  reason?: string
  model: { version: string, pending?: { version: string, error?: string } }
}

interface Answer {
  status: number
  startedAt: number
  answeredAt: number
  version?: string
  aiLevel?: string
  predictions?: string
}

const tiny = (seed: number) => buildTinyClassifier({ seed, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW' })

const health = async (url: string) => await healthOf<Health>(url)

async function analyze (url: string, photo: Buffer): Promise<Answer> {
  const startedAt = performance.now()
  const fd = new FormData()
  fd.append('image', new Blob([photo], { type: 'image/jpeg' }), 'p.jpg')
  const res = await fetch(`${url}/api/v2/analyze/guest`, { method: 'POST', body: fd })
  const body = await res.json() as { model?: { version: string }, skin_analysis?: { ai_level: string }, predictions?: unknown }
  return { status: res.status, startedAt, answeredAt: performance.now(), version: body.model?.version, aiLevel: body.skin_analysis?.ai_level, predictions: JSON.stringify(body.predictions) }
}

/** Uploads from `clients` loops until stop() is called; every answer is kept. */
function traffic (url: string, photo: Buffer, clients = 3) {
  const answers: Answer[] = []
  let stopped = false
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) answers.push(await analyze(url, photo))
  })
  return { answers, stop: async () => { stopped = true; await Promise.all(loops) } }
}

const metric = async (server: SpawnedServer, result: string) =>
  Number(new RegExp(`^shine_model_swaps_total\\{result="${result}",slot="primary"\\} (\\d+)$`, 'm').exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0)

/** fauxqs with v1 at skin/live/, and the built server on it (its env extended by `env`). */
async function liveServer (t: Test, env: Record<string, string>) {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  await putLive(s3, 'models', 'skin/live', 'v1', tiny(1))
  const serverEnv = { ...s3Env(s3.endpoint), S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/live/model.onnx', MODEL_DIR: await scratchDir(t), ...env }
  const server = await spawnServer(t, serverEnv)
  await waitReady(server.url)
  const push = async (version: string, model: Uint8Array, manifest?: Record<string, unknown>) => await putLive(s3, 'models', 'skin/live', version, model, manifest)
  return { server, push, env: serverEnv }
}

async function stopped (t: Test, server: SpawnedServer): Promise<void> {
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
}

t.test('a push under steady upload traffic: every answer 200 from one version, the new one only after the switch', async (t) => {
  // Polling off: the SIGHUP is what makes this server look.
  const { server, push } = await liveServer(t, { MODEL_POLL_S: '0', MODEL_SWAP: 'live' })
  const photo = await jpeg({ width: 320, height: 240, seed: 5 })
  const load = traffic(server.url, photo)
  await until('traffic on v1', async () => load.answers.length >= 20)

  await push('v2', tiny(2))
  server.child.kill('SIGHUP')
  let switchedAt = 0
  await until('/health on v2', async () => {
    if ((await health(server.url)).model.version !== 'v2') return false
    // Once /health has *answered* v2: the switch may have come while that request was in flight.
    switchedAt = performance.now()
    return true
  })
  const seenBefore = load.answers.length
  await until('traffic on v2', async () => load.answers.length >= seenBefore + 20)
  await load.stop()

  const { answers } = load
  t.same(answers.filter((a) => a.status !== 200), [], 'every answer is 200')
  t.same([...new Set(answers.map((a) => a.version))].sort(), ['v1', 'v2'], 'both versions answered')
  t.same(answers.filter((a) => a.aiLevel !== `tiny-test ${a.version}`), [], 'skin_analysis names the version that answered')
  // The same photo gets the same predictions from one model: a response mixing two pools'
  // parts (or naming one version and computed by the other) would not match its version's.
  const byVersion = new Map(answers.map((a) => [a.version, a.predictions]))
  t.not(byVersion.get('v1'), byVersion.get('v2'), 'the two versions answer this photo differently')
  t.same(answers.filter((a) => a.predictions !== byVersion.get(a.version)), [], 'every answer is all one version')
  // Measured from the first v2 *answer*: by then the switch had happened, so a request sent
  // later is admitted on v2. (From the first v2 request's start it is a race: uploads sent
  // side by side reach admission in either order.)
  const firstNew = Math.min(...answers.filter((a) => a.version === 'v2').map((a) => a.answeredAt))
  t.same(answers.filter((a) => a.startedAt > firstNew && a.version !== 'v2').length, 0, 'once v2 answered, no later request got v1')
  t.same(answers.filter((a) => a.startedAt > switchedAt && a.version !== 'v2').length, 0, 'after /health showed v2, only v2 answered')

  const swapped = /"msg":"model swapped"/.test(server.output()) ? JSON.parse(server.output().split('\n').find((l) => l.includes('"model swapped"'))!) as Record<string, unknown> : undefined
  t.match(swapped, { from: 'v1', to: 'v2', downloadMs: Number, convertMs: 0, warmMs: Number, drainMs: Number, totalMs: Number }, 'one log line with the durations')
  t.equal(await metric(server, 'ok'), 1)
  t.equal((await health(server.url)).model.pending, undefined)
  await stopped(t, server)
})

t.test('a corrupt push is refused once, the old version keeps answering, the next good push is taken', async (t) => {
  const { server, push } = await liveServer(t, { MODEL_POLL_S: '0.2', MODEL_SWAP: 'live' })
  const photo = await jpeg({ width: 320, height: 240, seed: 5 })

  // Verifies (the manifest pins these bytes) but ONNX Runtime cannot load it.
  await push('v2', fakeOnnx(4096))
  await until('the refusal in /health', async () => (await health(server.url)).model.pending?.error !== undefined)
  const refused = await health(server.url)
  t.match(refused, { status: 'ok', model: { version: 'v1', pending: { version: 'v2', error: /./ } } }, '/health stays 200 on v1 and says why v2 was refused')
  t.match(await analyze(server.url, photo), { status: 200, version: 'v1' })
  t.equal(await metric(server, 'failed'), 1)
  // Several polls later (0.2 s apart) the same bad version has not been tried again.
  await sleep(1500)
  t.equal((server.output().match(/"new model version refused/g) ?? []).length, 1, 'refused once, not retried while it stays the same')
  t.equal(await metric(server, 'failed'), 1)

  await push('v3', tiny(3))
  await until('v3 served', async () => (await health(server.url)).model.version === 'v3')
  t.equal((await health(server.url)).model.pending, undefined, 'the refusal is cleared by the good version')
  t.match(await analyze(server.url, photo), { status: 200, version: 'v3' })
  t.equal(await metric(server, 'ok'), 1)
  await stopped(t, server)
})

t.test('labels that do not match the output, and a warm-up producing NaN, are refused', async (t) => {
  const { server, push } = await liveServer(t, { MODEL_POLL_S: '0', MODEL_SWAP: 'live' })

  await push('v2', tiny(2), { labels: SKIN_LABELS.slice(0, 5) })
  server.child.kill('SIGHUP')
  await until('the refusal', async () => (await health(server.url)).model.pending?.error !== undefined)
  t.match(await health(server.url), { status: 'ok', model: { version: 'v1', pending: { version: 'v2', error: /5 labels/ } } })

  await push('v3', buildTinyClassifier({ seed: 3, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW', poison: true }))
  server.child.kill('SIGHUP')
  await until('the second refusal', async () => (await health(server.url)).model.pending?.version === 'v3')
  await until('its error', async () => (await health(server.url)).model.pending?.error !== undefined)
  t.match(await health(server.url), { status: 'ok', model: { version: 'v1', pending: { version: 'v3', error: /NaN or Infinity/ } } })
  t.equal(await metric(server, 'failed'), 2)
  await stopped(t, server)
})

t.test('MODEL_SWAP=restart: a version that does not load is refused without a restart; a good one is cached, the process drains, exits 0 and boots on it', async (t) => {
  const { server, push, env } = await liveServer(t, { MODEL_POLL_S: '0', MODEL_SWAP: 'restart' })
  // Verifies, but ONNX Runtime cannot load it: the trial in one worker finds that out.
  await push('bad', fakeOnnx(4096))
  server.child.kill('SIGHUP')
  await until('the refusal', async () => (await health(server.url)).model.pending?.error !== undefined)
  t.match(await health(server.url), { status: 'ok', model: { version: 'v1', pending: { version: 'bad', error: /./ } } }, 'still serving v1, not restarting onto it')
  t.equal(server.child.exitCode, null)
  t.equal(await metric(server, 'restart'), 0)

  await push('v2', tiny(2))
  server.child.kill('SIGHUP')
  t.same(await server.exited, { code: 0, signal: null }, 'exits 0 for the supervisor to restart it')
  t.match(server.output(), /"reason":"restarting to load model version v2 \(MODEL_SWAP=restart\)"[^\n]*"msg":"stopping: finishing in-flight requests"/)
  t.equal((await cachedVersions(env.MODEL_DIR)).length, 2, 'v2 was downloaded and verified before the exit')

  const next = await spawnServer(t, env)
  t.match((await waitReady(next.url)).at(-1)!.body, { status: 'ok', model: { version: 'v2', source: 'cache' } })
  await stopped(t, next)
})

t.test('a local MODEL_PATH whose bundle is rewritten is swapped on the poll timer', async (t) => {
  const dir = t.testdir()
  const bundle = await writeTinyBundle(join(dir, 'model'), { seed: 1, version: 'local-1' })
  const server = await spawnServer(t, { MODEL_PATH: bundle.dir, MODEL_DIR: join(dir, 'cache'), MODEL_POLL_S: '0.2', MODEL_SWAP: 'live' })
  await waitReady(server.url)
  await writeTinyBundle(bundle.dir, { seed: 2, version: 'local-2' })
  await until('local-2 served', async () => (await health(server.url)).model.version === 'local-2')
  t.match(await analyze(server.url, await jpeg({ width: 64, height: 64, seed: 1 })), { status: 200, version: 'local-2' })
  await stopped(t, server)
})
