import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AppError } from '../errors.js'
import { errorResponses } from '../schemas.js'

/**
 * nginx's own 413 (its client_max_body_size), answered by the app so that it carries the same
 * CORS headers as every other answer (nginx/conf.d/elasticbeanstalk/00_application.conf).
 */
const proxyErrorRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/_proxy/payload-too-large', {
    schema: {
      summary: 'nginx\'s 413, in the API\'s shape (called by the proxy, not by clients)',
      querystring: Type.Object({ limit_mb: Type.Integer({ minimum: 1 }) }),
      response: errorResponses(['BAD_REQUEST', 'PAYLOAD_TOO_LARGE'])
    },
    logLevel: 'warn',
    config: { rateLimit: false }
  }, async (request) => {
    throw new AppError('PAYLOAD_TOO_LARGE', `The upload is larger than ${request.query.limit_mb} MB; send a smaller image.`)
  })
}

export default proxyErrorRoutes
