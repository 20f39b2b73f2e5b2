// Entry point: config → listen → model → warm pool → ready; signals → drain → exit.
// The only module that reads the environment, touches the disk or network, and listens.
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { startEngine } from './inference/engine.js'
import { localStore, type ModelStore } from './models/store.js'
import { Readiness } from './readiness.js'

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  // Fail fast with one line that names the variable; no stack for a configuration mistake.
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`)
  process.exit(1)
}

const readiness = new Readiness()
const app = buildApp({ config, readiness })
const store: ModelStore = localStore(config.modelPath)

async function boot (): Promise<void> {
  readiness.starting('loading the model')
  const bundle = await store.resolve((progress) => readiness.starting('downloading the model', progress))
  readiness.starting('starting inference workers')
  const engine = await startEngine(bundle, config, (pool) => readiness.trackPool(pool))
  if (readiness.status === 'stopping') return
  readiness.ready(engine)
  const { spec } = engine.model
  app.log.info({ model: { name: spec.name, version: spec.version, source: engine.model.source }, workers: config.workers }, 'ready')
  for (const warning of spec.warnings) app.log.warn(warning)
}

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  readiness.stopping()
  app.log.info({ signal }, 'stopping: finishing in-flight requests')
  // A request that outlives the grace period must not keep the process from exiting.
  const force = setTimeout(() => {
    app.log.error({ graceMs: config.shutdownGraceMs }, 'grace period over; exiting with requests still open')
    process.exit(1)
  }, config.shutdownGraceMs)
  force.unref()
  await app.close()
  app.log.info('stopped')
  process.exit(0)
}

process.once('SIGTERM', () => { void shutdown('SIGTERM') })
process.once('SIGINT', () => { void shutdown('SIGINT') })

await app.listen({ port: config.port, host: config.host })
boot().catch((err: unknown) => {
  const reason = err instanceof Error ? err.message : String(err)
  readiness.failed(reason)
  app.log.error({ err }, 'model failed to load; /health answers 503')
})
