import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, toErrorReply } from '../errors.js'

function send (request: FastifyRequest, reply: FastifyReply, err: unknown) {
  const { statusCode, headers, body } = toErrorReply(err, request.id)
  // The full error (stack, cause) goes to the log, tagged with the request id; never to the client.
  if (statusCode >= 500) request.log.error({ err }, 'request failed')
  else request.log.info({ code: body.error.code, detail: (err as Error).message }, 'request rejected')
  return reply.code(statusCode).headers(headers).type('application/json; charset=utf-8').send(body)
}

// Every error leaves as DESIGN.md's JSON shape, whether we, Fastify, multipart or Piscina threw it.
export default fp(async (app) => {
  app.setErrorHandler(async (err, request, reply) => await send(request, reply, err))
  app.setNotFoundHandler(async (request, reply) =>
    await send(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}.`)))
}, { name: 'errors' })
