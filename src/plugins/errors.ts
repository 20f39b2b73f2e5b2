import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, toErrorReply, type ErrorCode } from '../errors.js'

export interface ErrorsOptions {
  /** Told of every error answer (for the rejections metric). */
  onError?: (code: ErrorCode) => void
  /** A refused body not yet read and declared no larger than this is drained (MAX_UPLOAD_MB). */
  drainBytes?: number
}

/**
 * Whether the connection can stay open after an error answer sent before the body was read in
 * full. HTTP/1.1 lets a server answer first, but it must then read the rest or close after its
 * answer (RFC 9112 §9.3), and closing while nginx is still sending the body makes nginx answer
 * 502 in place of ours (its write fails with EPIPE; actix/actix-web#3967). So a body that nobody
 * has started reading and whose declared length is within the upload limit is left to Node, which
 * reads and discards it after the answer and keeps the connection. Anything else closes: a body
 * read part-way (a parser holds it), without a length, too large, or stalled.
 */
export function drainsAfterAnswer (
  request: { complete: boolean, readableDidRead: boolean, headers: { 'content-length'?: string } }, code: ErrorCode, drainBytes: number
): boolean {
  if (request.complete) return true
  // A stalled client would hold the connection open until the request deadline.
  if (code === 'REQUEST_TIMEOUT') return false
  const length = Number(request.headers['content-length'] ?? Number.NaN)
  return !request.readableDidRead && length <= drainBytes
}

// Every error leaves as DESIGN.md's JSON shape, whether we, Fastify, multipart or Piscina threw it.
export default fp<ErrorsOptions>(async (app, { onError = () => {}, drainBytes = 0 }) => {
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
    if (!drainsAfterAnswer(request.raw, body.error.code, drainBytes)) reply.header('connection', 'close')
    return reply.code(statusCode).headers(headers).type('application/json; charset=utf-8').send(body)
  }
  app.setErrorHandler(async (err, request, reply) => await send(request, reply, err))
  app.setNotFoundHandler(async (request, reply) =>
    await send(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}.`)))
}, { name: 'errors' })
