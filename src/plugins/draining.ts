import fp from 'fastify-plugin'
import { AppError } from '../errors.js'
import type { Readiness } from '../readiness.js'
import { HEALTH_PATHS } from '../routes/health.js'

const isHealth = (url: string) => (HEALTH_PATHS as readonly string[]).includes(url.split('?')[0]!)

// While shutting down: in-flight requests finish, new analyses get our 503 JSON (instead of
// Fastify's own closing reply), and every answer closes its connection so keep-alive clients
// and proxies reconnect to an instance that stays.
export default fp<{ readiness: Readiness }>(async (app, { readiness }) => {
  app.addHook('onRequest', async (request) => {
    if (readiness.status === 'stopping' && request.url.startsWith('/api/') && !isHealth(request.url)) {
      throw new AppError('NOT_READY', 'The server is shutting down; retry the request.')
    }
  })
  app.addHook('onSend', async (_request, reply) => {
    if (readiness.status === 'stopping') reply.header('connection', 'close')
  })
}, { name: 'draining' })
