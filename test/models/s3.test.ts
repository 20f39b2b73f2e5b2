// Error classification and naming: pure, no server.
import type { S3Client } from '@aws-sdk/client-s3'
import t from 'tap'
import { createS3Client, describeS3Error, explainS3Error, headObject, isMd5Etag } from '../../src/models/s3.js'
import { StoreError } from '../../src/models/store.js'

const s3Error = (status: number, name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name === 'Unknown' ? 'UnknownError' : `${name} message`), { name, $metadata: { httpStatusCode: status }, ...extra })

t.test('describeS3Error branches on the HTTP status, not on error names', async (t) => {
  t.same(describeS3Error(s3Error(503, 'SlowDown')), { status: 503, code: 'SlowDown', retryable: true })
  t.same(describeS3Error(s3Error(500, 'InternalError')), { status: 500, code: 'InternalError', retryable: true })
  t.same(describeS3Error(s3Error(429, 'TooManyRequests')), { status: 429, code: 'TooManyRequests', retryable: true })
  t.same(describeS3Error(s3Error(403, 'Forbidden')), { status: 403, code: 'Forbidden', retryable: false })
  t.same(describeS3Error(s3Error(404, 'Unknown')), { status: 404, code: 'HTTP404', retryable: false }, 'a HEAD 404 has no body to name it')
  t.same(describeS3Error(s3Error(400, 'X', { Code: 'InvalidArgument' })), { status: 400, code: 'InvalidArgument', retryable: false })
  t.same(describeS3Error(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' })),
    { status: undefined, code: 'NoCredentials', retryable: false })
  t.same(describeS3Error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), { status: undefined, code: 'ECONNRESET', retryable: true })
  t.same(describeS3Error(Object.assign(new Error('t'), { name: 'TimeoutError' })), { status: undefined, code: 'TimeoutError', retryable: true })
  t.same(describeS3Error(new TypeError('bug')), { status: undefined, code: 'TypeError', retryable: false })
  t.same(describeS3Error('a string'), { status: undefined, code: 'Error', retryable: false })
})

t.test('explainS3Error: one line naming bucket and key, with what to check', async (t) => {
  const where = 's3://b/k/model.onnx'
  t.equal(explainS3Error(s3Error(403, 'Unknown'), where).message,
    'AccessDenied: s3://b/k/model.onnx: access denied: these credentials may not read it (needs s3:GetObject; without s3:ListBucket S3 also answers 403 for a missing key)')
  t.equal(explainS3Error(s3Error(404, 'Unknown'), where, 'bucket').message, 'NoSuchBucket: s3://b/k/model.onnx: the bucket does not exist (check S3_BUCKET)')
  t.equal(explainS3Error(s3Error(404, 'NoSuchKey'), where).message, 'NoSuchKey: s3://b/k/model.onnx: no such key in the bucket (check S3_MODEL_KEY)')
  t.match(explainS3Error(s3Error(412, 'PreconditionFailed'), where).message, /^PreconditionFailed: s3:\/\/b\/k\/model\.onnx: the object changed during the download/)
  t.equal(explainS3Error(s3Error(503, 'SlowDown'), where).message, 'SlowDown: s3://b/k/model.onnx: S3 answered 503: SlowDown message')
  t.equal(explainS3Error(s3Error(500, 'Unknown'), where).message, 'HTTP500: s3://b/k/model.onnx: S3 answered 500')
  t.equal(explainS3Error(Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }), where).message,
    'NoCredentials: s3://b/k/model.onnx: no AWS credentials found (environment, shared config or instance role) (Could not load credentials)')
  t.equal(explainS3Error(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }), where).message,
    'EndpointUnreachable: s3://b/k/model.onnx: the S3 endpoint cannot be reached (connect ECONNREFUSED 127.0.0.1:9)')
  t.equal(explainS3Error(Object.assign(new Error(''), { code: 'ENOTFOUND' }), where).message,
    'EndpointUnreachable: s3://b/k/model.onnx: the S3 endpoint cannot be reached (ENOTFOUND)')
  t.equal(explainS3Error(Object.assign(new Error('socket timed out after 20000 ms of inactivity'), { name: 'TimeoutError' }), where).message,
    'Timeout: s3://b/k/model.onnx: S3 went silent (no connection within S3_CONNECT_TIMEOUT_S, or no byte within S3_STALL_TIMEOUT_S) (socket timed out after 20000 ms of inactivity)')
  t.equal(explainS3Error(new Error('disk full'), where).message, 'Error: s3://b/k/model.onnx: disk full')
  t.equal(explainS3Error(Object.assign(new Error(''), { code: 'EIO' }), where).message, 'EIO: s3://b/k/model.onnx: failed')
  const err = explainS3Error(s3Error(403, 'AccessDenied'), where)
  t.ok(err instanceof StoreError)
  t.equal(explainS3Error(err, 'elsewhere'), err, 'an explained error passes through')
})

t.test('ETags: an MD5 only for single-part uploads', async (t) => {
  t.ok(isMd5Etag('d41d8cd98f00b204e9800998ecf8427e'))
  t.notOk(isMd5Etag('d41d8cd98f00b204e9800998ecf8427e-3'))
  t.notOk(isMd5Etag(''))
})

t.test('headObject reads versioned buckets: VersionId is the version, "null" is none', async (t) => {
  const reply = (out: Record<string, unknown>) => ({ send: async () => out }) as unknown as S3Client
  t.match(await headObject(reply({ ETag: 'W/"abc"', VersionId: 'v123', ContentLength: 5, Metadata: { a: 'b' } }), 'b', 'k'),
    { key: 'k', etag: 'abc', versionId: 'v123', size: 5, metadata: { a: 'b' } })
  t.match(await headObject(reply({ VersionId: 'null' }), 'b', 'k'), { etag: '', versionId: undefined, size: 0, metadata: {} })
})

t.test('a client for AWS itself (no endpoint) uses the default credential chain', async (t) => {
  const client = createS3Client({ region: 'eu-west-1', endpoint: undefined, forcePathStyle: false, connectTimeoutMs: 1000, stallTimeoutMs: 1000 })
  t.teardown(() => client.destroy())
  t.equal(await client.config.region(), 'eu-west-1')
  t.equal(client.config.maxAttempts instanceof Function ? await client.config.maxAttempts() : client.config.maxAttempts, 1, 'retries are ours, not the SDK\'s')
})
