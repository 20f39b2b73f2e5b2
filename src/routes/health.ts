import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { Readiness } from '../readiness.js'
import type { ThreadBudget } from '../thread-budget.js'
import { ModelInfo } from '../schemas.js'

// The S3 model store's counters (src/models/counters.ts); absent without S3.
const StoreStats = Type.Object({
  cacheHits: Type.Integer(),
  cacheMisses: Type.Integer(),
  downloadedBytes: Type.Integer(),
  retries: Type.Integer(),
  lastDownload: Type.Optional(Type.Object({ bytes: Type.Integer(), durationMs: Type.Number(), mbPerS: Type.Number() }))
})

// How the cores are divided (src/thread-budget.ts), so an undersized pool is never silent.
const Threads = Type.Object({
  cores: Type.Integer(),
  workers: Type.Integer(),
  intraOpThreads: Type.Integer(),
  uvThreadpool: Type.Integer(),
  decodeThreads: Type.Integer(),
  backgroundNice: Type.Integer(),
  warnings: Type.Array(Type.String())
})

// The canary model, when one is configured: its share, what serves in it, and what it is loading
// or refused. Absent `model` means it serves nothing yet and every analysis goes to the primary.
const Canary = Type.Object({
  percent: Type.Number(),
  model: Type.Optional(Type.Object({ name: Type.String(), version: Type.String(), format: Type.String(), source: Type.String(), labels: Type.Array(Type.String()) })),
  pending: Type.Optional(Type.Object({ version: Type.String(), error: Type.Optional(Type.String()) }))
})

const Ready = Type.Object({
  status: Type.Literal('ok'),
  model: ModelInfo,
  workers: Type.Integer(),
  /** Workers replaced after a crash since boot (the pool stays at `workers`). */
  workerRestarts: Type.Integer(),
  uptimeS: Type.Number(),
  threads: Threads,
  canary: Type.Optional(Canary),
  store: Type.Optional(StoreStats)
})

const NotReady = Type.Object({
  status: Type.String(),
  reason: Type.String(),
  /** While starting: loading, downloading, converting (a Keras model to ONNX) or warming. */
  phase: Type.Optional(Type.String()),
  model: Type.Optional(Type.Object({ downloadedBytes: Type.Number(), totalBytes: Type.Number() })),
  store: Type.Optional(StoreStats)
})

function canaryState ({ canary, canaryPercent: percent }: Readiness) {
  if (canary === undefined) return undefined
  const model = canary.engine?.model
  return {
    percent,
    model: model === undefined ? undefined : { name: model.spec.name, version: model.spec.version, format: model.spec.format, source: model.source, labels: [...model.spec.labels] },
    pending: canary.pending
  }
}

/** The readiness routes: one handler, one answer. */
export const HEALTH_PATHS = ['/health', '/api/health'] as const

// Load balancers poll these; they answer from memory and never touch the pool.
const healthRoutes: FastifyPluginAsyncTypebox<{ readiness: Readiness, threads: ThreadBudget }> = async (app, { readiness, threads }) => {
  // /api/health is the path the team's Elastic Beanstalk check and frontend used: the same answer.
  for (const url of HEALTH_PATHS) {
    app.get(url, { schema: { summary: 'Readiness: 200 once the model is loaded and the workers are warm', response: { 200: Ready, 503: NotReady } }, logLevel: 'warn' }, readinessHandler)
  }

  async function readinessHandler (_request: FastifyRequest, reply: FastifyReply) {
    const engine = readiness.status === 'ready' ? readiness.engine : undefined
    if (engine === undefined) {
      reply.code(503).header('cache-control', 'no-store')
      return { status: readiness.status, reason: readiness.reason, phase: readiness.phase, model: readiness.progress, store: readiness.store?.snapshot() }
    }
    const { spec, source, sourceError } = engine.model
    reply.header('cache-control', 'no-store')
    return {
      status: 'ok' as const,
      model: { name: spec.name, version: spec.version, format: spec.format, source, demo: spec.demo, sourceError, warnings: [...spec.warnings], labels: [...spec.labels], pending: readiness.primary.pending },
      workers: engine.pool.workers,
      workerRestarts: engine.pool.stats().restarts,
      uptimeS: Math.round((Date.now() - readiness.startedAt) / 100) / 10,
      threads,
      canary: canaryState(readiness),
      store: readiness.store?.snapshot()
    }
  }

  app.get('/health/live', {
    schema: { summary: 'Liveness: 200 whenever the process serves HTTP', response: { 200: Type.Object({ status: Type.Literal('alive') }) } },
    logLevel: 'warn'
  }, async () => ({ status: 'alive' as const }))
}

export default healthRoutes
