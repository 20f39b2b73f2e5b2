import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, SEND_AS } from '../errors.js'
import { JsonImageScanner } from './json-image.js'
import { readImagePart } from './multipart.js'
import { readChunks, sizeOf } from './stream.js'

/** A body left unread by its content-type parser, read by the handler after admission. */
interface StreamBody { kind: 'json' | 'raw', stream: Readable }

export interface BodyLimits {
  /** MAX_UPLOAD_MB: the image's size, whichever way it is sent. */
  maxImageBytes: number
  stallMs: number
}

/**
 * The JSON body may be this large: base64 is 4/3 of the image, JSON-escaped CRLF line breaks
 * every 76 characters add up to 4/76 more, and the other fields are at most 64 KiB.
 */
export const jsonBodyLimit = (maxImageBytes: number) => Math.ceil(maxImageBytes * 4 / 3 * (1 + 4 / 76)) + 64 * 1024 + 1024

const isStreamBody = (body: unknown): body is StreamBody =>
  typeof body === 'object' && body !== null && 'stream' in body && 'kind' in body

/**
 * Registers the JSON and raw-image parsers for the routes of `app` (encapsulated: other routes
 * keep Fastify's JSON parser). They only tag the body; nothing is read before the handler.
 */
export function acceptImageBodies (app: FastifyInstance): void {
  const pass = (kind: StreamBody['kind']) => (_request: FastifyRequest, stream: Readable, done: (err: null, body: StreamBody) => void) =>
    done(null, { kind, stream })
  app.addContentTypeParser('application/json', pass('json'))
  app.addContentTypeParser('application/octet-stream', pass('raw'))
  app.addContentTypeParser(/^image\/[\w.+-]+$/, pass('raw'))
}

/** The photo's bytes, from whichever of the three request forms the client used. */
export async function readImage (request: FastifyRequest, limits: BodyLimits): Promise<Buffer> {
  if (request.isMultipart()) return await readImagePart(request, limits.stallMs)
  const body = request.body
  if (!isStreamBody(body)) throw new AppError('UNSUPPORTED_MEDIA_TYPE', SEND_AS)
  const limit = sizeOf(limits.maxImageBytes)
  // A declared length over the limit is refused before a byte is read; a chunked body when it crosses it.
  const declared = Number(request.headers['content-length'] ?? 0)
  if (body.kind === 'raw') {
    const tooLarge = `The image is larger than ${limit}.`
    if (declared > limits.maxImageBytes) throw new AppError('PAYLOAD_TOO_LARGE', tooLarge)
    const chunks: Buffer[] = []
    await readChunks(body.stream, (chunk) => chunks.push(chunk), { maxBytes: limits.maxImageBytes, tooLarge, stallMs: limits.stallMs })
    return Buffer.concat(chunks)
  }
  const maxBytes = jsonBodyLimit(limits.maxImageBytes)
  const tooLarge = `The JSON body is larger than a ${limit} image in base64 can be.`
  if (declared > maxBytes) throw new AppError('PAYLOAD_TOO_LARGE', tooLarge)
  const scanner = new JsonImageScanner(limits.maxImageBytes)
  await readChunks(body.stream, (chunk) => scanner.push(chunk), { maxBytes, tooLarge, stallMs: limits.stallMs })
  return scanner.end().bytes
}
