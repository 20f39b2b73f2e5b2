import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { analyzeImage } from '../analysis.js'
import { AppError } from '../errors.js'
import type { DecodeLimits } from '../imaging/preprocess.js'
import type { Admission } from '../admission.js'
import type { Metrics } from '../metrics.js'
import type { Readiness } from '../readiness.js'
import { ErrorResponse } from '../schemas.js'
import { readImagePart } from './upload.js'

const Prediction = Type.Object({ label: Type.String(), confidence: Type.Number() })

// Fastify serialises with this schema: a field missing here is silently dropped from the answer.
const AnalysisResponse = Type.Object({
  success: Type.Literal(true),
  analysis_id: Type.String(),
  timestamp: Type.String({ format: 'date-time' }),
  requestId: Type.String(),
  model: Type.Object({ name: Type.String(), version: Type.String(), demo: Type.Boolean() }),
  predictions: Type.Array(Prediction),
  top: Prediction,
  image: Type.Object({ width: Type.Integer(), height: Type.Integer(), format: Type.String() }),
  timingsMs: Type.Object({ preprocess: Type.Number(), queue: Type.Number(), inference: Type.Number(), total: Type.Number() }),
  // What the team's results page reads (CLIENTS.md): the predictions under its names.
  skin_analysis: Type.Object({
    skin_conditions: Type.Array(Type.Object({ type: Type.String(), confidence: Type.Number() })),
    total_conditions: Type.Integer(),
    ai_processed: Type.Literal(true),
    ai_level: Type.String()
  })
})

export interface AnalyzeOptions {
  readiness: Readiness
  metrics: Metrics
  rateLimit: { max: number, timeWindow: number }
  admission: Admission
  limits: DecodeLimits
  /** 408 when an upload sends nothing for this long. */
  uploadStallMs: number
}

const analyzeRoutes: FastifyPluginAsyncTypebox<AnalyzeOptions> = async (app, { readiness, metrics, rateLimit, admission, limits, uploadStallMs }) => {
  app.post('/api/v2/analyze/guest', {
    // Per client IP (X-Forwarded-For only from TRUST_PROXY peers); 0 turns it off.
    config: { rateLimit: rateLimit.max > 0 ? rateLimit : false },
    schema: {
      consumes: ['multipart/form-data'],
      response: { 200: AnalysisResponse, '4xx': ErrorResponse, '5xx': ErrorResponse }
    },
    // Refused before the body is read: a full server spends nothing on an upload it cannot serve.
    onRequest: async (_request, reply) => {
      if (readiness.engine === undefined) throw new AppError('NOT_READY')
      const release = admission.tryEnter()
      if (release === undefined) throw new AppError('OVERLOADED')
      // 'close' fires once however the exchange ends: answered, failed or abandoned.
      reply.raw.once('close', release)
    }
  }, async (request, reply) => {
    const bytes = await readImagePart(request, uploadStallMs)
    // Taken once the upload is in, so a slow upload never holds a replaced model's pool open;
    // one engine answers the whole analysis (its version is the one in the response).
    // onRequest checked readiness, and an engine once ready is only ever replaced, never removed.
    const lease = readiness.lease()!
    // A client that goes away stops waiting for a worker, which frees its queue slot.
    // (The listener is removed before the reply is sent, so a normal close never aborts.)
    const gone = new AbortController()
    const onClose = () => gone.abort()
    reply.raw.once('close', onClose)
    try {
      const analysis = await analyzeImage(bytes, lease.engine, limits, gone.signal)
      metrics.preprocess.observe(analysis.timingsMs.preprocess / 1000)
      metrics.queueWait.observe(analysis.timingsMs.queue / 1000)
      metrics.inference.observe(analysis.timingsMs.inference / 1000)
      return { requestId: request.id, ...analysis }
    } finally {
      reply.raw.off('close', onClose)
      lease.release()
    }
  })
}

export default analyzeRoutes
