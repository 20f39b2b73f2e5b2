import helmet from '@fastify/helmet'
import multipart from '@fastify/multipart'
import rateLimit from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Admission } from './admission.js'
import type { Config } from './config.js'
import { AppError } from './errors.js'
import { Metrics } from './metrics.js'
import cors from './plugins/cors.js'
import docs from './plugins/docs.js'
import draining from './plugins/draining.js'
import errors from './plugins/errors.js'
import httpMetrics from './plugins/http-metrics.js'
import requestId, { requestIdFor } from './plugins/request-id.js'
import type { Readiness } from './readiness.js'
import analyzeRoutes from './routes/analyze.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import proxyErrorRoutes from './routes/proxy-errors.js'

// The API's version in the OpenAPI document (package.json's, kept by hand: no JSON import at runtime).
const API_VERSION = '0.1.0'

export interface AppDeps {
  config: Config
  readiness: Readiness
  /** Fastify's logger option; defaults to pino at config.logLevel. */
  logger?: FastifyServerOptions['logger']
}

// Browser forms carry one photo and a few small fields; anything bigger is refused (413), not read.
const FORM_LIMITS = { files: 1, fields: 20, parts: 25, fieldNameSize: 200, fieldSize: 64 * 1024, headerPairs: 50 }

export function buildApp ({ config, readiness, logger }: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: logger ?? {
      level: config.logLevel,
      // Credentials never reach the log; bodies (images) are never logged at all.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-amz-security-token"]']
    },
    genReqId: requestIdFor,
    trustProxy: typeof config.trustProxy === 'object' ? [...config.trustProxy] : config.trustProxy,
    // Shutdown answers come from plugins/draining.ts, in the API's error shape.
    return503OnClosing: false,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.requestTimeoutMs
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Above keepAliveTimeout, or Node can cut a kept-alive socket between a proxy's requests.
  app.server.headersTimeout = config.keepAliveTimeoutMs + 1000

  const metrics = new Metrics(readiness)
  app.register(httpMetrics, { metrics })
  app.register(errors, { onError: (code) => metrics.rejected(code), drainBytes: config.maxUploadBytes })
  app.register(requestId)
  app.register(cors, { origins: config.corsOrigins, maxAgeS: config.corsMaxAgeS })
  app.register(draining, { readiness })
  // A JSON API: the defaults that matter are nosniff, no framing, HSTS and no referrer.
  // Helmet's CSP minus upgrade-insecure-requests: /docs served over plain http (a local run, or
  // an instance behind a TLS-ending ALB reached directly) must still load its own scripts.
  app.register(helmet, { global: true, contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })
  app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => new AppError('RATE_LIMITED',
      `Too many analyses from your address; try again in ${context.after}.`, { retryAfterS: context.ttl / 1000 })
  })
  app.register(docs, { version: API_VERSION })
  app.register(multipart, { limits: { ...FORM_LIMITS, fileSize: config.maxUploadBytes } })
  app.register(healthRoutes, { readiness, threads: config.threads })
  app.register(metricsRoutes, { metrics })
  app.register(proxyErrorRoutes)
  app.register(analyzeRoutes, {
    readiness,
    metrics,
    admission: new Admission(config.workers + config.queueSize),
    rateLimit: { max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs },
    limits: { maxPixels: config.maxImagePixels, timeoutS: Math.ceil(config.inferenceTimeoutMs / 1000) },
    body: { maxImageBytes: config.maxUploadBytes, stallMs: config.uploadStallMs }
  })
  app.addHook('onClose', async () => {
    // Inferences whose clients left still run in the workers: the pool waits for them (pool.ts).
    app.log.info({ runningInferences: readiness.engine?.pool.stats().running ?? 0 }, 'closing the inference pool')
    await readiness.close()
  })
  return app
}
