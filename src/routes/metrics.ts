import type { FastifyPluginAsync } from 'fastify'
import type { Metrics } from '../metrics.js'

// Prometheus scrapes this; like /health it never waits on the pool.
const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics', produces: ['text/plain'], response: { 200: { type: 'string', description: 'Prometheus text format' } } },
    logLevel: 'warn',
    config: { rateLimit: false }
  }, async (_request, reply) => {
    reply.type(metrics.registry.contentType)
    return await metrics.registry.metrics()
  })
}

export default metricsRoutes
