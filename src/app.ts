import cors from '@fastify/cors'
import multipart from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import errors from './plugins/errors.js'
import requestId, { requestIdFor } from './plugins/request-id.js'
import type { Readiness } from './readiness.js'
import analyzeRoutes from './routes/analyze.js'
import healthRoutes from './routes/health.js'

export interface AppDeps {
  config: Config
  readiness: Readiness
  /** Fastify's logger option; defaults to pino at config.logLevel. */
  logger?: FastifyServerOptions['logger']
}

// Generous: multipart forms from browsers carry a few small fields at most.
const FORM_LIMITS = { files: 1, fields: 20, parts: 25, fieldNameSize: 200, fieldSize: 64 * 1024, headerPairs: 50 }

export function buildApp ({ config, readiness, logger }: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: logger ?? {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-amz-security-token"]']
    },
    genReqId: requestIdFor,
    trustProxy: typeof config.trustProxy === 'object' ? [...config.trustProxy] : config.trustProxy,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.requestTimeoutMs
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Above keepAliveTimeout, or Node can cut a kept-alive socket between a proxy's requests.
  app.server.headersTimeout = config.keepAliveTimeoutMs + 1000

  app.register(errors)
  app.register(requestId)
  app.register(cors, { origin: config.corsOrigins === '*' ? '*' : [...config.corsOrigins], exposedHeaders: ['x-request-id', 'retry-after'] })
  app.register(multipart, { limits: { ...FORM_LIMITS, fileSize: config.maxUploadBytes } })
  app.register(healthRoutes, { readiness })
  app.register(analyzeRoutes, {
    readiness,
    limits: { maxPixels: config.maxImagePixels, timeoutS: Math.ceil(config.inferenceTimeoutMs / 1000) }
  })
  app.addHook('onClose', async () => await readiness.close())
  return app
}
