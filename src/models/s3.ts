import { HeadBucketCommand, HeadObjectCommand, S3Client, type HeadObjectCommandOutput, type S3ClientConfig } from '@aws-sdk/client-s3'
import { StoreError } from './store.js'

export interface S3ClientOptions {
  region: string
  endpoint: string | undefined
  forcePathStyle: boolean
  connectTimeoutMs: number
  /** No byte in either direction for this long fails the request (a silent socket never hangs boot). */
  stallTimeoutMs: number
  /** Tests pass explicit credentials; production uses the SDK's default chain (DESIGN.md). */
  credentials?: S3ClientConfig['credentials']
}

export function createS3Client (o: S3ClientOptions): S3Client {
  return new S3Client({
    region: o.region,
    ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
    forcePathStyle: o.forcePathStyle,
    ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
    // The store owns retries (backoff.ts, download.ts): one policy that backs off, resumes with
    // Range, counts and logs. The SDK's own would multiply with it and never resume a cut body.
    maxAttempts: 1,
    // The SDK has no timeouts by default. socketTimeout is an idle timeout that stays armed
    // while the body streams: it is the stall timeout for headers and body alike.
    requestHandler: { connectionTimeout: o.connectTimeoutMs, socketTimeout: o.stallTimeoutMs },
    // The manifest's sha256 guards every byte; a second, JS-implemented CRC pass over a 128 MB
    // body would only cost CPU at boot.
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

/** What S3 says about one object: enough to name its version and to fetch exactly it. */
export interface ObjectVersion {
  key: string
  etag: string
  /** Only on buckets with versioning; `null` is S3's id for objects written before it was on. */
  versionId: string | undefined
  size: number
  lastModified: Date | undefined
  metadata: Readonly<Record<string, string>>
}

/** An S3 failure reduced to what the caller branches on: fakes disagree on error names. */
export interface S3Failure {
  status: number | undefined
  code: string
  retryable: boolean
}

// Node and SDK errors that mean "the network, not S3, said no": worth another attempt.
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET'])
const NETWORK_NAMES = new Set(['TimeoutError', 'AbortError'])

export function describeS3Error (err: unknown): S3Failure {
  const e = err as { $metadata?: { httpStatusCode?: number }, name?: string, code?: string, Code?: string }
  const status = e.$metadata?.httpStatusCode
  if (status !== undefined && status >= 300) {
    // 429 and every 5xx (503 SlowDown, 500 InternalError) are throttling or S3-side trouble.
    const code = e.Code ?? (e.name === 'Unknown' || e.name === undefined ? `HTTP${status}` : e.name)
    return { status, code, retryable: status === 429 || status >= 500 }
  }
  if (e.name === 'CredentialsProviderError') return { status: undefined, code: 'NoCredentials', retryable: false }
  const code = e.code ?? e.name ?? 'Error'
  return { status: undefined, code, retryable: NETWORK_CODES.has(code) || NETWORK_NAMES.has(e.name ?? '') }
}

const unquote = (etag: string) => etag.replace(/^W\//, '').replaceAll('"', '')

export async function headObject (client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<ObjectVersion> {
  const out: HeadObjectCommandOutput = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
  return {
    key,
    etag: unquote(out.ETag ?? ''),
    versionId: out.VersionId === undefined || out.VersionId === 'null' ? undefined : out.VersionId,
    size: out.ContentLength ?? 0,
    lastModified: out.LastModified,
    metadata: out.Metadata ?? {}
  }
}

/** A HEAD's 404 has no body, so whether the bucket or the key is missing takes one more question. */
export async function bucketExists (client: S3Client, bucket: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal })
    return true
  } catch (err) {
    if (describeS3Error(err).status === 404) return false
    throw err
  }
}

/** An ETag is the body's MD5 only for single-part uploads without SSE-KMS: 32 hex digits, no "-N". */
export const isMd5Etag = (etag: string) => /^[0-9a-f]{32}$/i.test(etag)

// Why each failure happens and what to check, for a person reading /health or the CLI.
const EXPLAIN: Record<string, string> = {
  AccessDenied: 'access denied: these credentials may not read it (needs s3:GetObject; without s3:ListBucket S3 also answers 403 for a missing key)',
  NoSuchBucket: 'the bucket does not exist (check S3_BUCKET)',
  NoSuchKey: 'no such key in the bucket (check S3_MODEL_KEY)',
  NoCredentials: 'no AWS credentials found (environment, shared config or instance role)',
  EndpointUnreachable: 'the S3 endpoint cannot be reached',
  Timeout: 'S3 went silent (no connection within S3_CONNECT_TIMEOUT_S, or no byte within S3_STALL_TIMEOUT_S)',
  PreconditionFailed: 'the object changed during the download (a push in progress?); the next attempt starts over'
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])
// Failures whose own message carries the detail a person needs (an address, a duration).
const WITH_DETAIL = new Set(['EndpointUnreachable', 'NoCredentials', 'Timeout'])

/** Names a failure for `where` (s3://bucket/key); `missing` tells a 404's bucket from its key. */
export function explainS3Error (err: unknown, where: string, missing: 'bucket' | 'key' = 'key'): StoreError {
  if (err instanceof StoreError) return err
  const failure = describeS3Error(err)
  const detail = err instanceof Error && err.message !== '' && err.message !== 'UnknownError' ? err.message : undefined
  let code = failure.code
  if (failure.status === 403) code = 'AccessDenied'
  else if (failure.status === 404) code = missing === 'bucket' ? 'NoSuchBucket' : 'NoSuchKey'
  else if (failure.status === 412) code = 'PreconditionFailed'
  else if (failure.status === undefined && UNREACHABLE.has(code)) code = 'EndpointUnreachable'
  else if (code === 'TimeoutError') code = 'Timeout'
  const why = EXPLAIN[code] ?? (failure.status === undefined ? detail ?? 'failed' : `S3 answered ${failure.status}${detail === undefined ? '' : `: ${detail}`}`)
  const extra = WITH_DETAIL.has(code) ? ` (${detail ?? failure.code})` : ''
  return new StoreError(`${code}: ${where}: ${why}${extra}`, { cause: err })
}
