import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, toErrorReply, type ErrorCode } from '../errors.js'

export interface ErrorsOptions {
  /** Told of every error answer (for the rejections metric). */
  onError?: (code: ErrorCode) => void
}

// Every error leaves as DESIGN.md's JSON shape, whether we, Fastify, multipart or Piscina threw it.
export default fp<ErrorsOptions>(async (app, { onError = () => {} }) => {
  function send (request: FastifyRequest, reply: FastifyReply, err: unknown) {
    const { statusCode, headers, body } = toErrorReply(err, request.id)
    onError(body.error.code)
    // The full error (stack, cause) goes to the log, tagged with the request id; never to the client.
    if (reply.raw.destroyed) {
      // The client left (closed tab, dropped connection): no one to answer, nothing went wrong.
      request.log.info({ detail: (err as Error).message }, 'client went away')
    } else if (statusCode >= 500 && body.error.code !== 'OVERLOADED' && body.error.code !== 'NOT_READY') {
      request.log.error({ err }, 'request failed')
    } else {
      request.log.info({ code: body.error.code, detail: (err as Error).message }, 'request rejected')
    }
    // A body we stopped reading (too large, stalled, refused up front) is not drained for
    // keep-alive: the connection closes after the answer.
    if (!request.raw.complete) reply.header('connection', 'close')
    return reply.code(statusCode).headers(headers).type('application/json; charset=utf-8').send(body)
  }
  app.setErrorHandler(async (err, request, reply) => await send(request, reply, err))
  app.setNotFoundHandler(async (request, reply) =>
    await send(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}.`)))
}, { name: 'errors' })
