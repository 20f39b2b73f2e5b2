import type { Readable } from 'node:stream'
import { AppError } from '../errors.js'

export const stalled = (stallMs: number) =>
  new AppError('REQUEST_TIMEOUT', `No data arrived for ${stallMs / 1000} s; the upload was stopped.`)

export interface StreamLimits {
  /** Bytes the body may have; beyond it 413 with `tooLarge` and reading stops. */
  maxBytes: number
  tooLarge: string
  /** 408 when nothing arrives for this long. */
  stallMs: number
}

/**
 * Hands each chunk of a request body to `onChunk` as it arrives. Stops at the first error: too
 * large, stalled, a throw from onChunk (bad base64), or the client leaving. The stream is paused,
 * not destroyed, so an answer can still be sent on the connection (which then closes).
 */
export async function readChunks (stream: Readable, onChunk: (chunk: Buffer) => void, limits: StreamLimits): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let bytes = 0
    let timer: NodeJS.Timeout | undefined
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => finish(stalled(limits.stallMs)), limits.stallMs)
    }
    const onData = (chunk: Buffer) => {
      arm()
      bytes += chunk.length
      if (bytes > limits.maxBytes) return finish(new AppError('PAYLOAD_TOO_LARGE', limits.tooLarge))
      try {
        onChunk(chunk)
      } catch (err) {
        finish(err)
      }
    }
    const onEnd = () => finish()
    const onClose = () => finish(new Error('the client closed the connection during the upload'))
    function finish (err?: unknown) {
      clearTimeout(timer)
      stream.off('data', onData).off('end', onEnd).off('error', finish).off('close', onClose)
      if (err === undefined) return resolve()
      stream.pause()
      reject(err)
    }
    stream.on('data', onData).once('end', onEnd).once('error', finish).once('close', onClose)
    arm()
  })
}

/** A size limit as people read it. */
export const sizeOf = (bytes: number) => bytes < 1024
  ? `${bytes} bytes`
  : bytes < 1048576 ? `${Math.round(bytes / 1024)} KB` : `${Math.round(bytes / 1048576 * 10) / 10} MB`
