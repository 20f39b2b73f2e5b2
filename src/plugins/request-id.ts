import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'

// A client's id is echoed only if it is short and plain: it goes into every log line.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Fastify's genReqId: the caller's x-request-id when it is safe, else a fresh UUID. */
export function requestIdFor (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID()
}

export default fp(async (app) => {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
}, { name: 'request-id' })
