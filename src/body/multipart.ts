import type { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'
import { stalled } from './stream.js'

// Browsers name the file part "image" or similar; busboy does not limit names in multipart.
const MAX_FIELD_NAME = 200

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * The first file part, whatever its field name. The rest of the form is read too, so that its
 * limits (one file, a few small fields) hold before any work is done on the image. Nothing is
 * written to disk. A client that sends nothing for `stallMs` gets 408 (while a file part is
 * being read) or its connection closed (between parts, where no reply can be framed).
 */
export async function readImagePart (request: FastifyRequest, stallMs: number): Promise<Buffer> {
  let image: Buffer | undefined
  let current: Readable | undefined
  let timer: NodeJS.Timeout | undefined
  const arm = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      if (current !== undefined) current.destroy(stalled(stallMs))
      else request.raw.destroy(stalled(stallMs))
    }, stallMs)
  }
  request.raw.on('data', arm)
  arm()
  try {
    for await (const part of request.parts()) {
      // busboy truncates over-long names and values silently; we refuse them instead.
      if (part.fieldname.length > MAX_FIELD_NAME || (part.type === 'field' && part.valueTruncated)) {
        throw new AppError('PAYLOAD_TOO_LARGE', 'A form field is too large; send the image and small fields only.')
      }
      if (part.type !== 'file') continue
      current = part.file
      image = await readAll(part.file)
      current = undefined
    }
  } finally {
    clearTimeout(timer)
    request.raw.off('data', arm)
  }
  if (image === undefined) throw new AppError('NO_IMAGE')
  return image
}
