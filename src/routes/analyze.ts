import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { analyzeImage } from '../analysis.js'
import { AppError } from '../errors.js'
import type { DecodeLimits } from '../imaging/preprocess.js'
import type { Readiness } from '../readiness.js'
import { ErrorResponse } from '../schemas.js'

const Prediction = Type.Object({ label: Type.String(), confidence: Type.Number() })

const AnalysisResponse = Type.Object({
  requestId: Type.String(),
  model: Type.Object({ name: Type.String(), version: Type.String(), demo: Type.Boolean() }),
  predictions: Type.Array(Prediction),
  top: Prediction,
  image: Type.Object({ width: Type.Integer(), height: Type.Integer(), format: Type.String() }),
  timingsMs: Type.Object({ preprocess: Type.Number(), inference: Type.Number(), total: Type.Number() })
})

export interface AnalyzeOptions {
  readiness: Readiness
  limits: DecodeLimits
}

const analyzeRoutes: FastifyPluginAsyncTypebox<AnalyzeOptions> = async (app, { readiness, limits }) => {
  app.post('/api/v2/analyze/guest', {
    schema: {
      consumes: ['multipart/form-data'],
      response: { 200: AnalysisResponse, '4xx': ErrorResponse, '5xx': ErrorResponse }
    }
  }, async (request, reply) => {
    const engine = readiness.engine
    if (engine === undefined) throw new AppError('NOT_READY')
    // The first file part, whatever its field name; fields before it are skipped.
    const file = await request.file()
    if (file === undefined) throw new AppError('NO_IMAGE')
    const bytes = await file.toBuffer()
    // A client that goes away stops waiting for a worker, which frees its queue slot.
    const gone = new AbortController()
    // (The listener is removed before the reply is sent, so a normal close never aborts.)
    const onClose = () => gone.abort()
    reply.raw.once('close', onClose)
    try {
      const analysis = await analyzeImage(bytes, engine, limits, gone.signal)
      return { requestId: request.id, ...analysis }
    } finally {
      reply.raw.off('close', onClose)
    }
  })
}

export default analyzeRoutes
