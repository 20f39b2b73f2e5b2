import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { open, rm } from 'node:fs/promises'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { backoffDelay, sleep, type RetryPolicy } from './backoff.js'
import { OrderedSink, planParts, type Part } from './ordered-sink.js'
import { describeS3Error, type ObjectVersion } from './s3.js'

export interface RetryEvent {
  key: string
  /** Failures in a row for this range, or whole-file attempts for a hash mismatch. */
  attempt: number
  delayMs: number
  reason: string
  /** Where the next request resumes, in bytes from the start of the object. */
  offset: number
}

export interface DownloadOptions {
  client: S3Client
  bucket: string
  object: ObjectVersion
  /** A new file in the cache folder; it is deleted again on any failure. */
  dest: string
  /** Hex digests the bytes must have; a mismatch deletes the file and downloads again. */
  sha256?: string | undefined
  md5?: string | undefined
  /** Ranged GETs in flight; 1 = one streamed GET for the whole object. */
  streams: number
  partSize: number
  retry: RetryPolicy
  /** `received` restarts from 0 when a corrupt download is started over. */
  onProgress?: (received: number, delta: number) => void
  onRetry?: (event: RetryEvent) => void
}

export interface Downloaded {
  bytes: number
  sha256: string
  md5: string | undefined
}

export class DownloadError extends Error {
  override name = 'DownloadError'
}

export class IntegrityError extends DownloadError {
  override name = 'IntegrityError'
}

/** Streams one range into the sink, resuming with Range after a reset or stall. */
async function fetchPart (
  o: DownloadOptions, part: Part, sink: OrderedSink, abort: AbortSignal, onBytes: (delta: number) => void
): Promise<void> {
  const { object } = o
  let failures = 0
  for (;;) {
    const from = part.start + part.received
    try {
      const whole = from === 0 && part.end === object.size
      const out = await o.client.send(new GetObjectCommand({
        Bucket: o.bucket,
        Key: object.key,
        VersionId: object.versionId,
        // Every range comes from the version that was HEADed, or the request fails with 412.
        IfMatch: `"${object.etag}"`,
        Range: whole ? undefined : `bytes=${from}-${part.end - 1}`
      }), { abortSignal: abort })
      if (!whole && out.ContentRange?.startsWith(`bytes ${from}-`) !== true) {
        throw new DownloadError(`the server ignored the Range header for ${object.key}`)
      }
      // A silent socket fails the body with a TimeoutError: the client's socketTimeout is the
      // stall timeout, and it stays armed while the body streams (src/models/s3.ts).
      for await (const chunk of out.Body as Readable as AsyncIterable<Buffer>) {
        part.received += chunk.length
        const wait = sink.push(part, chunk)
        onBytes(chunk.length)
        if (wait !== undefined) await wait
      }
      if (part.start + part.received !== part.end) {
        throw Object.assign(new Error(`body ended after ${part.start + part.received} of ${part.end} bytes`), { code: 'ECONNRESET' })
      }
      sink.complete(part)
      return
    } catch (err) {
      const failure = describeS3Error(err)
      if (abort.aborted || !failure.retryable) throw err
      // A connection that delivered bytes before failing is resumed without using up an attempt.
      if (part.start + part.received > from) failures = 0
      failures++
      if (failures >= o.retry.maxAttempts) throw err
      const delayMs = backoffDelay(failures, o.retry.baseDelayMs, o.retry.maxDelayMs)
      o.onRetry?.({ key: object.key, attempt: failures, delayMs, reason: `${failure.code}: ${(err as Error).message}`, offset: part.start + part.received })
      await sleep(delayMs)
    }
  }
}

async function downloadOnce (o: DownloadOptions): Promise<Downloaded> {
  const sha256 = createHash('sha256')
  const md5 = o.md5 === undefined ? undefined : createHash('md5')
  const parts = planParts(o.object.size, o.streams, o.partSize)
  // 'wx': the temp name is fresh; failing beats writing into someone else's file.
  const file = await open(o.dest, 'wx')
  const abort = new AbortController()
  const sink = new OrderedSink(file, md5 === undefined ? [sha256] : [sha256, md5], parts)
  let received = 0
  const onBytes = (delta: number) => {
    received += delta
    o.onProgress?.(received, delta)
  }
  let firstError: unknown
  try {
    let next = 0
    const worker = async () => {
      while (next < parts.length && !abort.signal.aborted) {
        const part = parts[next++] as Part
        await sink.headReaches(part.index - o.streams + 1)
        if (abort.signal.aborted) return
        await fetchPart(o, part, sink, abort.signal, onBytes)
      }
    }
    // The first failure stops the other ranges; all of them settle before the file is closed.
    await Promise.allSettled(Array.from({ length: Math.min(o.streams, parts.length) }, async () => {
      try {
        await worker()
      } catch (err) {
        if (!abort.signal.aborted) {
          firstError = err
          abort.abort(err)
          sink.release()
        }
      }
    }))
    if (abort.signal.aborted) throw firstError
    await sink.finish()
  } finally {
    await file.close()
  }
  const result = { bytes: received, sha256: sha256.digest('hex'), md5: md5?.digest('hex') }
  const name = posix.basename(o.object.key)
  if (o.sha256 !== undefined && result.sha256 !== o.sha256.toLowerCase()) {
    throw new IntegrityError(`sha256 of ${name} is ${result.sha256}, the manifest pins ${o.sha256}`)
  }
  if (o.md5 !== undefined && result.md5 !== o.md5.toLowerCase()) {
    throw new IntegrityError(`MD5 of ${name} is ${result.md5}, its ETag says ${o.md5}`)
  }
  return result
}

/**
 * Downloads one object version to `dest`: streamed (or in parallel ranges), hashed on the fly,
 * fsynced. Transient failures resume where they stopped; a hash mismatch starts over; whatever
 * fails leaves no file behind.
 */
export async function downloadObject (o: DownloadOptions, attempt = 1): Promise<Downloaded> {
  try {
    return await downloadOnce(o)
  } catch (err) {
    await rm(o.dest, { force: true })
    if (!(err instanceof IntegrityError) || attempt >= o.retry.maxAttempts) throw err
    const delayMs = backoffDelay(attempt, o.retry.baseDelayMs, o.retry.maxDelayMs)
    o.onRetry?.({ key: o.object.key, attempt, delayMs, reason: err.message, offset: 0 })
    await sleep(delayMs)
    return await downloadObject(o, attempt + 1)
  }
}
