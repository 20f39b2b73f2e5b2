import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { onRequestHookHandler } from 'fastify'
import { analyzeImage, type Analysis } from '../analysis.js'
import { acceptImageBodies, readImage, type BodyLimits } from '../body/read-image.js'
import { AppError } from '../errors.js'
import type { DecodeLimits } from '../imaging/preprocess.js'
import type { Admission } from '../admission.js'
import { clientKey } from '../inference/canary.js'
import type { Metrics } from '../metrics.js'
import type { ModelSpec } from '../models/manifest.js'
import type { Readiness } from '../readiness.js'
import { toFixedResult } from '../responses/fixed.js'
import { toHareRunResult, toModelInfo } from '../responses/hare-run.js'
import { AnalysisResponse, AnalyzeBody, AnalyzeHeaders, analyzeErrors, FixedResponse, HareRunResponse } from './analyze-schemas.js'

export interface AnalyzeOptions {
  readiness: Readiness
  metrics: Metrics
  rateLimit: { max: number, timeWindow: number }
  admission: Admission
  limits: DecodeLimits
  body: BodyLimits
}

// One pipeline, three answers: the routes their clients used, each in the shape its page reads.
const ROUTES = [
  {
    url: '/api/v2/analyze/guest',
    summary: 'Analyse a photo (the guest analysis their results page reads)',
    response: AnalysisResponse,
    shape: (a: Analysis) => a
  },
  {
    url: '/api/v6/skin/analyze-hare-run',
    summary: 'Analyse a photo: the v6 answer their suggestions page reads',
    response: HareRunResponse,
    shape: (a: Analysis, spec: ModelSpec) => ({
      ...common(a), status: 'success' as const, analysis_type: 'skin_condition_classification' as const, model_info: toModelInfo(spec), result: toHareRunResult(a.predictions)
    })
  },
  {
    url: '/api/v5/skin/analyze-fixed',
    summary: 'Analyse a photo: the v5 answer (top label, top 3, all predictions)',
    response: FixedResponse,
    shape: (a: Analysis) => ({ ...common(a), status: 'success' as const, model: a.model, ...toFixedResult(a.predictions) })
  }
] as const

const common = ({ success, analysis_id: id, timestamp }: Analysis) => ({ success, analysis_id: id, timestamp })

const analyzeRoutes: FastifyPluginAsyncTypebox<AnalyzeOptions> = async (app, { readiness, metrics, rateLimit, admission, limits, body }) => {
  acceptImageBodies(app)
  // Per client IP (X-Forwarded-For only from TRUST_PROXY peers), one count across the three
  // routes; 0 turns it off.
  const limit: onRequestHookHandler = rateLimit.max > 0 ? app.rateLimit(rateLimit) : async () => {}
  // Refused before the body is read: a full server spends nothing on an upload it cannot serve.
  const admit: onRequestHookHandler = async (_request, reply) => {
    if (readiness.engine === undefined) throw new AppError('NOT_READY')
    const release = admission.tryEnter()
    if (release === undefined) throw new AppError('OVERLOADED')
    // 'close' fires once however the exchange ends: answered, failed or abandoned.
    reply.raw.once('close', release)
  }

  for (const route of ROUTES) {
    app.post(route.url, {
      schema: {
        summary: route.summary,
        consumes: Object.keys(AnalyzeBody.content),
        body: AnalyzeBody,
        headers: AnalyzeHeaders,
        response: { 200: route.response, ...analyzeErrors }
      },
      // The body is read by src/body as a stream, after admission; its schema documents it.
      validatorCompiler: () => () => true,
      onRequest: [limit, admit]
    }, async (request, reply) => {
      const bytes = await readImage(request, body)
      // Taken once the upload is in, so a slow upload never holds a replaced model's pool open;
      // one engine answers the whole analysis (its version is the one in the response).
      // onRequest checked readiness, and an engine once ready is only ever replaced, never removed.
      const lease = readiness.lease(clientKey(request.headers['x-client-id'], request.ip))!
      const { engine } = lease
      const version = { version: engine.model.spec.version }
      metrics.answeredBy(request.raw, version.version)
      // A client that goes away stops waiting for a worker, which frees its queue slot.
      // (The listener is removed before the reply is sent, so a normal close never aborts.)
      const gone = new AbortController()
      const onClose = () => gone.abort()
      reply.raw.once('close', onClose)
      try {
        const analysis = await analyzeImage(bytes, engine, limits, gone.signal)
        metrics.preprocess.observe(version, analysis.timingsMs.preprocess / 1000)
        metrics.queueWait.observe(version, analysis.timingsMs.queue / 1000)
        metrics.inference.observe(version, analysis.timingsMs.inference / 1000)
        return { requestId: request.id, ...route.shape(analysis, engine.model.spec) }
      } finally {
        reply.raw.off('close', onClose)
        lease.release()
      }
    })
  }
}

export default analyzeRoutes
