import fp from 'fastify-plugin'
import type { Metrics } from '../metrics.js'

// Counts and times every answer by route template (not raw URL: label cardinality stays fixed).
export default fp<{ metrics: Metrics }>(async (app, { metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode), ...metrics.versionOf(request.raw) }
    metrics.requests.inc(labels)
    metrics.requestDuration.observe(labels, reply.elapsedTime / 1000)
  })
}, { name: 'http-metrics' })
