// The swapper in process, on real tiny bundles, real worker pools and the real local source
// (server-swap.test.ts runs the built server against S3). Sources and engines are faked only to
// reach states a real one reaches by timing alone (a probe failing, a pool still closing after
// its timeout, a shutdown landing mid-swap), each said where it is used.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startEngine, type Engine } from '../../src/inference/engine.js'
import { ModelSwapper, type SwapperOptions } from '../../src/inference/swap.js'
import { localStore, type ResolvedBundle } from '../../src/models/store.js'
import { watchLocal, type Candidate, type SourceVersion, type WatchedSource } from '../../src/models/versions.js'
import { Readiness } from '../../src/readiness.js'
import { buildTinyClassifier } from '../../scripts/onnx-builder.js'
import { writeBundle } from '../../scripts/bundle-writer.js'
import { testApp } from '../helpers/app.js'
import { SKIN_LABELS, TINY_SIZE, writeTinyBundle } from '../helpers/model.js'

interface Logged { level: string, obj: Record<string, unknown>, msg: string }

function recorder () {
  const lines: Logged[] = []
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } }
}

const ENGINE_OPTIONS = { workers: 1, intraOpThreads: 1, queueSize: 8, inferenceTimeoutMs: 30_000 }
const start: SwapperOptions['start'] = async (bundle, onPool) => await startEngine(bundle, ENGINE_OPTIONS, onPool)

async function until (what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !test(); i++) await sleep(10)
  if (!test()) throw new Error(`timed out waiting for ${what}`)
}

// `gate`: pools start only once it resolves (to land a shutdown while one is starting).
async function localSetup (t: Test, mode: SwapperOptions['mode'] = 'live', gate?: Promise<void>) {
  const { app, readiness, config } = await testApp(t, { bundle: { seed: 1, version: 'a' } })
  const source = watchLocal(localStore(config.modelPath, config.modelDir), config.modelPath)
  let resolves = 0
  const counted: WatchedSource = { probe: source.probe, resolve: async (...args) => { resolves++; return await source.resolve(...args) } }
  const { lines, log } = recorder()
  const restarts: string[] = []
  // The workers each start asked for (undefined: WORKERS).
  const started: Array<number | undefined> = []
  const counting: SwapperOptions['start'] = async (bundle, onPool, workers) => { started.push(workers); await gate; return await start(bundle, onPool) }
  const swapper = new ModelSwapper({ mode, readiness, slot: readiness.primary, source: counted, start: counting, restart: (r) => restarts.push(r), log })
  swapper.adopt(await source.resolve())
  resolves = 0
  t.teardown(async () => await swapper.close())
  return { app, readiness, config, swapper, lines, restarts, started, resolves: () => resolves }
}

const one = (engine: Engine) => engine.pool.infer(new Float32Array(3 * TINY_SIZE * TINY_SIZE), [1, 3, TINY_SIZE, TINY_SIZE])

t.test('a rewritten bundle is swapped in; the old pool serves the analyses that took it, then closes', async (t) => {
  const { app, readiness, config, swapper, lines } = await localSetup(t)
  const held = readiness.lease()!
  const old = held.engine
  await writeTinyBundle(config.modelPath, { seed: 2, version: 'b' })
  const checking = swapper.check()
  await until('the switch', () => readiness.engine !== old)
  t.equal(readiness.engine!.model.spec.version, 'b', 'new requests get the new version')
  t.equal((await app.inject('/health')).json().model.version, 'b')
  t.equal(readiness.primary.leased(old), 1)
  t.ok((await one(old)).data.length > 0, 'the old pool still answers the analysis that holds it')
  held.release()
  await checking
  await t.rejects(one(old), { code: 'NOT_READY' }, 'then the old pool is closed')
  const swapped = lines.find((l) => l.msg === 'model swapped')
  t.match(swapped?.obj, { from: 'a', to: 'b', drainedRequests: 1, downloadMs: Number, convertMs: 0, warmMs: Number, drainMs: Number, totalMs: Number })
  t.same(readiness.primary.swaps, { ok: 1, failed: 0, restart: 0 })
  t.equal(readiness.primary.pending, undefined)
  await swapper.check()
  t.equal(lines.filter((l) => l.msg === 'model swapped').length, 1, 'an unchanged source is not swapped again')
})

t.test('bad versions are refused, keep the old one serving, and are not retried until the source changes', async (t) => {
  const { app, readiness, config, swapper, lines, resolves } = await localSetup(t)
  const serving = readiness.engine
  await writeTinyBundle(config.modelPath, { seed: 2, version: 'b', manifest: { labels: SKIN_LABELS.slice(0, 3) } })
  await swapper.check()
  t.equal(readiness.engine, serving, 'still serving the old engine')
  t.match(readiness.primary.pending, { version: 'b', error: /3 labels/ })
  t.match((await app.inject('/health')).json(), { status: 'ok', model: { version: 'a', pending: { version: 'b', error: /3 labels/ } } })
  t.equal(resolves(), 1)
  await swapper.check()
  t.equal(resolves(), 1, 'the same bad version is not tried again')

  const poisoned = buildTinyClassifier({ seed: 3, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW', poison: true })
  await writeBundle(config.modelPath, poisoned, {
    name: 'tiny-test', version: 'c', labels: SKIN_LABELS, output: { name: 'logits', activation: 'softmax' },
    input: { name: 'input', layout: 'NCHW', width: TINY_SIZE, height: TINY_SIZE, mean: [0, 0, 0], std: [1, 1, 1] }
  })
  await swapper.check()
  t.match(readiness.primary.pending, { version: 'c', error: /NaN or Infinity/ })
  t.equal(resolves(), 2, 'a change is tried')
  t.same(readiness.primary.swaps, { ok: 0, failed: 2, restart: 0 })
  t.equal(lines.filter((l) => l.level === 'error' && l.msg === 'new model version refused; serving the current version').length, 2)
  t.equal(readiness.engine, serving)
  t.match(await app.inject({ method: 'GET', url: '/health' }).then((r) => r.statusCode), 200)
})

t.test('MODEL_SWAP=restart: the version is prepared and tried in one worker, then the process is asked to restart', async (t) => {
  const { readiness, config, swapper, restarts, lines, started } = await localSetup(t, 'restart')
  const serving = readiness.engine
  await writeTinyBundle(config.modelPath, { seed: 2, version: 'b' })
  await swapper.check()
  t.same(restarts, ['restarting to load model version b (MODEL_SWAP=restart)'])
  t.same(started, [1], 'one trial pool of one worker, not a second pool of WORKERS')
  t.equal(readiness.engine, serving, 'the old engine serves until the process drains')
  t.same(readiness.primary.swaps, { ok: 0, failed: 0, restart: 1 })
  t.match(lines.at(-1), { msg: /restarting to load it/, obj: { from: 'a', to: 'b', warmMs: Number } })
  await writeTinyBundle(config.modelPath, { seed: 3, version: 'c' })
  await swapper.check()
  t.equal(restarts.length, 1, 'asked once; the swapper is closed from then on')
})

t.test('MODEL_SWAP=restart: a version that does not load is refused by the trial; no restart, the old one serves', async (t) => {
  const { readiness, config, swapper, restarts } = await localSetup(t, 'restart')
  const serving = readiness.engine
  await writeBundle(config.modelPath, buildTinyClassifier({ seed: 4, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW', poison: true }), {
    name: 'tiny-test', version: 'poisoned', input: { name: 'input', layout: 'NCHW', width: TINY_SIZE, height: TINY_SIZE, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'logits', activation: 'softmax' }, labels: SKIN_LABELS
  })
  await swapper.check()
  t.same(restarts, [], 'the process is not restarted onto it')
  t.match(readiness.primary.pending, { version: 'poisoned', error: /NaN or Infinity/ })
  t.same(readiness.primary.swaps, { ok: 0, failed: 1, restart: 0 })
  t.equal(readiness.engine, serving)
  await writeTinyBundle(config.modelPath, { seed: 5, version: 'good' })
  await swapper.check()
  t.same(restarts, ['restarting to load model version good (MODEL_SWAP=restart)'], 'the next good version is restarted for')
})

t.test('MODEL_SWAP=restart: a shutdown during the trial asks for no restart', async (t) => {
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  const { config, swapper, restarts, started, readiness } = await localSetup(t, 'restart', gate)
  await writeTinyBundle(config.modelPath, { seed: 2, version: 'b' })
  const checking = swapper.check()
  await until('the trial pool starting', () => started.length === 1)
  const closing = swapper.close()
  open()
  await closing
  await checking
  t.same(restarts, [], 'stopping already: nothing to restart for')
  t.same(readiness.primary.swaps, { ok: 0, failed: 0, restart: 0 })
})

// A source whose answers the test sets: what S3 would say between two pushes.
function scripted (bundle: ResolvedBundle) {
  const state = {
    found: { identity: 'one', version: '1' } as SourceVersion | Error,
    resolveGate: undefined as Promise<void> | undefined,
    resolved: 0,
    converting: false,
    fail: undefined as Error | undefined,
    noManifest: false
  }
  const source: WatchedSource = {
    async probe () {
      if (state.found instanceof Error) throw state.found
      return state.found
    },
    async resolve (_progress, onConverting) {
      state.resolved++
      const found = state.found as SourceVersion
      if (state.converting) onConverting?.('keras-h5')
      await state.resolveGate
      if (state.fail !== undefined) throw state.fail
      return { bundle: state.noManifest ? { ...bundle, spec: undefined } : bundle, identity: found.identity } satisfies Candidate
    }
  }
  return { state, source }
}

async function scriptedSetup (t: Test, overrides: Partial<SwapperOptions> = {}) {
  const dir = t.testdir()
  const bundle = { ...(await localStore((await writeTinyBundle(dir, { seed: 1, version: 'a' })).dir, dir).resolve()) }
  const readiness = new Readiness()
  t.teardown(async () => await readiness.close())
  readiness.ready(await start(bundle, () => {}))
  const { state, source } = scripted(bundle)
  const { lines, log } = recorder()
  const swapper = new ModelSwapper({ mode: 'live', readiness, slot: readiness.primary, source, start, restart: () => {}, log, ...overrides })
  return { bundle, readiness, state, swapper, lines }
}

t.test('a check before boot finished does nothing; a probe failure is logged and changes nothing', async (t) => {
  const { bundle, readiness, state, swapper, lines } = await scriptedSetup(t)
  await swapper.check()
  t.equal(state.resolved, 0, 'nothing adopted yet: boot retries on its own')
  swapper.adopt({ bundle, identity: 'one' })
  state.found = new Error('EndpointUnreachable: s3://models/k: the S3 endpoint cannot be reached')
  await swapper.check()
  t.match(lines, [{ level: 'warn', obj: { reason: /EndpointUnreachable/ }, msg: 'model check failed; serving the current version' }])
  t.equal(readiness.primary.pending, undefined, 'a source that cannot be asked is not a refused version')
})

t.test('a version pushed during a swap waits for it, then replaces the one just swapped in', async (t) => {
  const { bundle, readiness, state, swapper, lines } = await scriptedSetup(t)
  swapper.adopt({ bundle, identity: 'one' })
  let open!: () => void
  state.resolveGate = new Promise((resolve) => { open = resolve })
  state.found = { identity: 'two', version: '2' }
  state.converting = true
  const first = swapper.check()
  await until('the first swap resolving', () => state.resolved === 1)
  t.same(readiness.primary.pending, { version: '2' }, '/health shows the version being prepared')
  state.found = { identity: 'three', version: '3' }
  const second = swapper.check()
  t.equal(state.resolved, 1, 'the second check does not start a second swap')
  open()
  await Promise.all([first, second])
  t.equal(state.resolved, 2, 'it ran after the first one ended')
  t.equal(readiness.primary.swaps.ok, 2)
  t.equal(lines.filter((l) => l.msg === 'model swapped').length, 2)
  t.ok((lines[0]?.obj.convertMs as number) >= 0, 'conversion time is measured when there was one')

  // The source goes back to what is served: nothing to do, and any refusal is forgotten.
  readiness.primary.pending = { version: 'x', error: 'old news' }
  await swapper.check()
  t.equal(readiness.primary.pending, undefined)
})

t.test('shutdown during a swap: while resolving it is dropped; while warming, close() waits for the pool', async (t) => {
  const { bundle, readiness, state, swapper, lines } = await scriptedSetup(t)
  swapper.adopt({ bundle, identity: 'one' })
  let open!: () => void
  state.resolveGate = new Promise((resolve) => { open = resolve })
  state.found = { identity: 'two', version: '2' }
  const checking = swapper.check()
  await until('resolving', () => state.resolved === 1)
  await swapper.close()
  open()
  await checking
  t.same(readiness.primary.swaps, { ok: 0, failed: 0, restart: 0 }, 'neither swapped nor counted as refused')
  t.same(lines, [])

  // Warming: the readiness closes every pool it tracks, so the warm-up fails and nothing is logged.
  let poolStarted!: () => void
  const started = new Promise<void>((resolve) => { poolStarted = resolve })
  const warming = await scriptedSetup(t, { start: async (b, onPool) => await start(b, (pool) => { onPool(pool); poolStarted() }) })
  warming.swapper.adopt({ bundle: warming.bundle, identity: 'one' })
  warming.state.found = { identity: 'two', version: '2' }
  const swapping = warming.swapper.check()
  await started
  // server.ts's order: the swapper first, then the app (whose onClose closes the readiness).
  const closing = warming.swapper.close()
  warming.readiness.stopping()
  await warming.readiness.close()
  await closing
  await swapping
  t.same(warming.readiness.primary.swaps, { ok: 0, failed: 0, restart: 0 })
  t.same(warming.lines, [])
})

t.test('stopping between warm-up and switch: the new engine is not switched in', async (t) => {
  // The real start, with the readiness flipped to stopping once its pool is warm.
  let readinessRef: Readiness | undefined
  const { bundle, readiness, state, swapper } = await scriptedSetup(t, {
    start: async (b, onPool) => {
      const engine = await start(b, onPool)
      readinessRef!.stopping()
      return engine
    }
  })
  readinessRef = readiness
  const serving = readiness.engine
  swapper.adopt({ bundle, identity: 'one' })
  state.found = { identity: 'two', version: '2' }
  await swapper.check()
  t.equal(readiness.engine, serving)
  t.same(readiness.primary.swaps, { ok: 0, failed: 0, restart: 0 })
})

t.test('an old pool that does not close in time is logged; it closes itself when its work ends', async (t) => {
  const { bundle, readiness, state, swapper, lines } = await scriptedSetup(t)
  // Faked: a real close times out only after SHUTDOWN_GRACE_S with an inference stuck in a worker.
  const serving = readiness.engine!
  const realClose = serving.pool.close
  let late = true
  serving.pool.close = async () => {
    await realClose()
    if (late) throw new Error('pool not closed after 10 ms (1 inference(s) still running)')
  }
  swapper.adopt({ bundle, identity: 'one' })
  state.found = { identity: 'two', version: '2' }
  await swapper.check()
  t.match(lines.find((l) => l.level === 'warn'), { obj: { reason: /not closed after/ }, msg: 'the replaced model\'s pool is still closing' })
  t.equal(readiness.primary.swaps.ok, 1)
  // Still tracked: the shutdown closes it again (and now it closes).
  late = false
})

t.test('a conversion that fails is refused with its time measured; a bundle without a manifest is named by its model', async (t) => {
  const { bundle, readiness, state, swapper, lines } = await scriptedSetup(t)
  swapper.adopt({ bundle, identity: 'one' })
  state.found = { identity: 'two', version: 'etag-two' }
  state.converting = true
  state.fail = new Error('Unconvertible: s3://models/k: Lambda layers are not supported')
  await swapper.check()
  t.same(readiness.primary.pending, { version: 'etag-two', error: 'Unconvertible: s3://models/k: Lambda layers are not supported' }, 'named by what the probe saw: nothing was downloaded')
  t.match(lines.at(-1)?.obj, { downloadMs: Number, convertMs: Number, warmMs: 0 })

  state.found = { identity: 'three', version: 'etag-three' }
  state.fail = undefined
  state.noManifest = true
  await swapper.check()
  t.equal(readiness.primary.pending, undefined)
  t.equal(readiness.engine?.model.spec.version, 'unversioned', 'what a manifest-less model reports')
})

t.test('the canary slot: check() loads its first version, refusing a bad one; later versions are swapped', async (t) => {
  const dir = t.testdir()
  const bundle = { ...(await localStore((await writeTinyBundle(dir, { seed: 1, version: 'a' })).dir, dir).resolve()) }
  const readiness = new Readiness({ canaryPercent: 50 })
  t.teardown(async () => await readiness.close())
  const primary = await start(bundle, (pool) => readiness.trackPool(pool))
  readiness.ready(primary)
  const { state, source } = scripted(bundle)
  const { lines, log } = recorder()
  const restarts: string[] = []
  // MODEL_SWAP=restart: an empty slot has no pool to give up, so its first version loads in place.
  const swapper = new ModelSwapper({ mode: 'restart', readiness, slot: readiness.canary!, source, loadsFirst: true, start, restart: (r) => restarts.push(r), log })
  t.teardown(async () => await swapper.close())
  const canary = readiness.canary!

  state.found = new Error('NoSuchKey: s3://models/canary/model.onnx does not exist')
  await swapper.check()
  t.same(canary.pending, { version: 'unknown', error: 'NoSuchKey: s3://models/canary/model.onnx does not exist' }, '/health says why the slot is empty')
  t.match(lines.at(-1), { level: 'warn', obj: { slot: 'canary' }, msg: 'model check failed; nothing loaded in this slot yet' })

  state.found = { identity: 'bad', version: 'b' }
  state.fail = new Error('Unconvertible: Lambda layers are not supported')
  await swapper.check()
  await swapper.check()
  t.equal(state.resolved, 1, 'a refused version is not tried again while it stays the same')
  t.match(canary.pending, { version: 'b', error: /Lambda/ })
  t.same(canary.swaps, { ok: 0, failed: 1, restart: 0 })
  t.match(lines.at(-1), { level: 'error', obj: { slot: 'canary' }, msg: 'model version refused; this slot stays empty' })
  t.equal(canary.engine, undefined)

  state.found = { identity: 'good', version: 'c' }
  state.fail = undefined
  await swapper.check()
  const first = canary.engine
  t.ok(first, 'the first good version loads')
  t.not(first, primary)
  t.equal(readiness.engine, primary, 'the primary is untouched')
  t.equal(canary.pending, undefined)
  t.same(canary.swaps, { ok: 0, failed: 1, restart: 0 }, 'a first load is not a swap')
  t.match(lines.at(-1), { level: 'info', obj: { slot: 'canary', version: 'a' }, msg: 'model loaded' })
  t.same(restarts, [])

  state.found = { identity: 'newer', version: 'd' }
  await swapper.check()
  t.same(restarts, ['restarting to load model version a (MODEL_SWAP=restart)'], 'a loaded canary is replaced as MODEL_SWAP says')
  t.equal(canary.engine, first)
})

t.test('the canary slot swaps live like the primary, draining its old pool', async (t) => {
  const dir = t.testdir()
  const bundle = { ...(await localStore((await writeTinyBundle(dir, { seed: 1, version: 'a' })).dir, dir).resolve()) }
  const readiness = new Readiness({ canaryPercent: 100 })
  t.teardown(async () => await readiness.close())
  readiness.ready(await start(bundle, (pool) => readiness.trackPool(pool)))
  const { state, source } = scripted(bundle)
  const { lines, log } = recorder()
  const swapper = new ModelSwapper({ mode: 'live', readiness, slot: readiness.canary!, source, loadsFirst: true, start, restart: () => {}, log })
  t.teardown(async () => await swapper.close())
  await swapper.check()
  const first = readiness.canary!.engine!
  const held = readiness.lease('id:someone')!
  t.equal(held.engine, first, 'at 100 % every client with a key gets the canary')
  state.found = { identity: 'two', version: '2' }
  const checking = swapper.check()
  await until('the switch', () => readiness.canary!.engine !== first)
  t.equal(readiness.canary!.leased(first), 1, 'the old canary pool waits for the analysis holding it')
  held.release()
  await checking
  await t.rejects(one(first), { code: 'NOT_READY' }, 'then it is closed')
  t.same(readiness.canary!.swaps, { ok: 1, failed: 0, restart: 0 })
  t.match(lines.at(-1), { obj: { slot: 'canary', drainedRequests: 1 }, msg: 'model swapped' })
})
