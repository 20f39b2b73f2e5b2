// Entry point: config → listen → model → warm pool → ready; signals → drain → exit.
// The only module that reads the environment, touches the disk or network, and listens.
import { buildApp } from './app.js'
import { loadConfig, type Config, type ConfigError, type ModelSource } from './config.js'
import { setDecodeThreads } from './imaging/preprocess.js'
import { startEngine } from './inference/engine.js'
import type { ModelSlot } from './inference/slot.js'
import { ModelSwapper } from './inference/swap.js'
import { backoffDelay, sleep } from './models/backoff.js'
import { StoreCounters } from './models/counters.js'
import { StoreError, localStore } from './models/store.js'
import { watchLocal, watchS3, type WatchedSource } from './models/versions.js'
import { Watcher } from './models/watch.js'
import { Readiness } from './readiness.js'
import { lowerOtherThreads } from './thread-priority.js'

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  // Fail fast with one line that names the variable; no stack for a configuration mistake.
  process.stderr.write(`${(err as ConfigError).message}\n`)
  process.exit(1)
}

setDecodeThreads(config.threads.decodeThreads)
const readiness = new Readiness({ canaryPercent: config.canary?.percent })
const app = buildApp({ config, readiness })
if (config.s3 !== undefined) readiness.store = new StoreCounters()

// The primary's and the canary's S3 keys: the two stores share MODEL_DIR, and each leaves the
// other's cache folder to it when pruning.
const s3Keys = [config.s3, config.canary?.source.kind === 's3' ? config.canary.source.s3 : undefined].flatMap((s3) => s3 === undefined ? [] : [s3.modelKey])

async function watchedSource (model: ModelSource): Promise<WatchedSource> {
  if (model.kind === 'local') return watchLocal(localStore(model.path, config.modelDir), model.path)
  // Imported only when used: the AWS SDK adds ~90 ms to every local-only start.
  const { s3Store } = await import('./models/s3-store.js')
  const spareKeys = s3Keys.filter((key) => key !== model.s3.modelKey)
  return watchS3(s3Store({ s3: model.s3, modelDir: config.modelDir, tuning: config.modelStore, counters: readiness.store, log: app.log, spareKeys }))
}

/** Threads the last sweep could not lower (logged with "ready"). */
let notLowered = 0

/**
 * startEngine, then every thread but the event loop's at BACKGROUND_NICE (README "Threads"): the
 * workers lowered themselves and the ONNX Runtime threads they started; this lowers the threads
 * the main thread started beside them, libuv's pool (where photos are decoded; it started while
 * the imports were read) and V8's helpers.
 */
async function startLowered (...args: Parameters<typeof startEngine>) {
  const engine = await startEngine(...args)
  notLowered = lowerOtherThreads(config.backgroundNice)
  return engine
}

/** The swapper that fills `slot` from `model`, and the watcher that makes it check every MODEL_POLL_S. */
async function swapping (slot: ModelSlot, model: ModelSource) {
  const source = await watchedSource(model)
  const swapper = new ModelSwapper({
    mode: config.modelSwap,
    readiness,
    slot,
    source,
    // The canary loads its first version through its swapper, after the primary is ready.
    loadsFirst: slot !== readiness.primary,
    start: async (bundle, onPool, workers) => await startLowered(bundle, workers === undefined ? config : { ...config, workers }, onPool),
    restart: (reason) => { void shutdown('model update', reason) },
    log: app.log
  })
  return { source, swapper, watcher: new Watcher({ intervalMs: config.modelPollMs, check: async () => await swapper.check() }) }
}

const primary = await swapping(readiness.primary, config.s3 === undefined ? { kind: 'local', path: config.modelPath } : { kind: 's3', s3: config.s3 })
const canary = config.canary === undefined || readiness.canary === undefined ? undefined : await swapping(readiness.canary, config.canary.source)
const slots = canary === undefined ? [primary] : [primary, canary]

{
  const { warnings, ...threads } = config.threads
  app.log.info({ threads }, 'thread budget')
  for (const warning of warnings) app.log.warn(`thread budget: ${warning}`)
}

async function boot (): Promise<void> {
  readiness.starting('loading the model', undefined, 'loading')
  const candidate = await primary.source.resolve(
    (progress) => readiness.starting('downloading the model', progress, 'downloading'),
    (format) => readiness.starting(`converting the model (${format})`, undefined, 'converting'))
  const { bundle } = candidate
  if (bundle.conversion !== undefined) {
    const { format, modelName, kerasVersion, parameters, layers, ms } = bundle.conversion
    app.log.info({ format, modelName, kerasVersion, parameters, layers: Object.keys(layers).length, ms: Math.round(ms), onnx: bundle.modelFile }, 'model converted to ONNX')
  }
  readiness.starting('starting inference workers', undefined, 'warming')
  const engine = await startLowered(bundle, config, (pool) => readiness.trackPool(pool))
  readiness.ready(engine)
  primary.swapper.adopt(candidate)
  primary.watcher.start()
  const { spec } = engine.model
  app.log.info({ model: { name: spec.name, version: spec.version, format: spec.format, source: engine.model.source }, workers: config.workers, pollS: config.modelPollMs / 1000, swap: config.modelSwap, canaryPercent: config.canary?.percent, backgroundNice: { nice: config.backgroundNice, notLowered } }, 'ready')
  for (const warning of spec.warnings) app.log.warn(warning)
  // The canary never holds up readiness: it loads beside the serving primary, and a canary that
  // does not load leaves every analysis to the primary (/health says why).
  void canary?.watcher.trigger()
}

let stopping = false
async function shutdown (signal: string, reason?: string): Promise<void> {
  if (stopping) return
  stopping = true
  readiness.stopping(reason)
  for (const { watcher } of slots) watcher.stop()
  const swapStopped = Promise.all(slots.map(async ({ swapper }) => await swapper.close()))
  app.log.info({ signal, reason }, 'stopping: finishing in-flight requests')
  // A request that outlives the grace period must not keep the process from exiting.
  const force = setTimeout(() => {
    app.log.error({ graceMs: config.shutdownGraceMs }, 'grace period over; exiting with requests still open')
    process.exit(1)
  }, config.shutdownGraceMs)
  force.unref()
  await app.close()
  await swapStopped
  app.log.info('stopped')
  process.exit(0)
}

process.once('SIGTERM', () => { void shutdown('SIGTERM') })
process.once('SIGINT', () => { void shutdown('SIGINT') })
// SIGHUP: check the model source now (after a promotion, without waiting for MODEL_POLL_S).
process.on('SIGHUP', () => {
  app.log.info({ signal: 'SIGHUP' }, 'checking the model source for a new version')
  for (const { watcher } of slots) void watcher.trigger()
})

// S3 failures (credentials, permissions, a push in progress, throttling) can heal, so boot is
// retried with backoff while /health says why; the process never exits into a crash loop.
// A local MODEL_PATH does not fix itself: it fails once. Returns the wait before the next attempt.
async function attemptBoot (attempt: number): Promise<number | undefined> {
  try {
    await boot()
    return undefined
  } catch (err) {
    const reason = (err as Error).message
    if (config.s3 === undefined) {
      readiness.failed(reason)
      app.log.error({ err }, 'model failed to load; /health answers 503')
      return undefined
    }
    const delayMs = backoffDelay(attempt, 1000, config.modelStore.retry.maxDelayMs)
    readiness.failed(`${reason} (attempt ${attempt}; retrying in ${Math.ceil(delayMs / 1000)} s)`)
    // A StoreError's message says it all; anything else keeps its stack for the log.
    app.log.error({ ...(err instanceof StoreError ? { reason } : { err }), attempt, retryInMs: delayMs }, 'model failed to load; retrying')
    return delayMs
  }
}

// A shutdown during a wait exits the process (shutdown() ends in process.exit).
async function bootWithRetries (): Promise<void> {
  let attempt = 1
  let wait = await attemptBoot(attempt)
  while (wait !== undefined) {
    await sleep(wait)
    wait = await attemptBoot(++attempt)
  }
}

await app.listen({ port: config.port, host: config.host })
void bootWithRetries()
