// The S3 model store against a real S3-protocol server (fauxqs on loopback), with faults
// injected by a proxy between the SDK and the server.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { ModelStoreConfig } from '../../src/config.js'
import { hashFile } from '../../src/models/bundle.js'
import { StoreCounters } from '../../src/models/counters.js'
import { s3Store, type StoreLog } from '../../src/models/s3-store.js'
import type { DownloadProgress } from '../../src/models/store.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { TEST_CREDENTIALS, cacheProblems, cachedVersions, fakeOnnx, fakeS3, publish, putLive, scratchDir } from '../helpers/s3.js'

const BUCKET = 'models'
const TUNING: ModelStoreConfig = {
  cacheKeep: 2,
  connectTimeoutMs: 1000,
  stallTimeoutMs: 5000,
  retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 40 },
  downloadStreams: 1,
  partSizeBytes: 64 * 1024
}

interface Logged { level: 'info' | 'warn', msg: string, obj: Record<string, unknown> }

function storeFor (t: Test, endpoint: string, modelDir: string, key: string, tuning: Partial<ModelStoreConfig> = {}) {
  const logs: Logged[] = []
  const log: StoreLog = {
    info: (obj, msg) => { logs.push({ level: 'info', msg, obj: obj as Record<string, unknown> }) },
    warn: (obj, msg) => { logs.push({ level: 'warn', msg, obj: obj as Record<string, unknown> }) }
  }
  const counters = new StoreCounters()
  const store = s3Store({
    s3: { bucket: BUCKET, modelKey: key, region: 'us-east-1', endpoint, forcePathStyle: true },
    modelDir,
    tuning: { ...TUNING, ...tuning },
    credentials: TEST_CREDENTIALS,
    counters,
    log
  })
  t.teardown(() => store.client.destroy())
  return { store, counters, logs }
}

async function setup (t: Test) {
  const s3 = await fakeS3(t)
  await s3.createBucket(BUCKET)
  return { s3, modelDir: await scratchDir(t), tmp: await scratchDir(t) }
}

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('push, cold boot from S3, then a restart is a cache hit with zero bytes downloaded', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: '2026-01-01.1' })
  t.equal(pushed.modelKey, 'skin/2026-01-01.1/model.onnx')

  const cold = storeFor(t, s3.endpoint, modelDir, pushed.modelKey)
  const progress: DownloadProgress[] = []
  const first = await cold.store.resolve((p) => progress.push({ ...p }))
  t.equal(first.source, 's3')
  t.equal(first.sourceError, undefined)
  t.equal(first.spec?.version, '2026-01-01.1')
  t.equal(await hashFile(first.modelFile), pushed.sha256)
  t.same(await readFile(first.modelFile), pushed.model)
  t.match(cold.counters.snapshot(), { cacheHits: 0, cacheMisses: 1, retries: 0 })
  t.ok(cold.counters.downloadedBytes >= pushed.bytes, 'counts the bytes it downloaded')
  t.match(cold.counters.lastDownload, { bytes: Number, durationMs: Number, mbPerS: Number })
  const last = progress.at(-1)!
  t.equal(last.downloadedBytes, last.totalBytes, 'progress ends at the total')
  t.ok(progress.every((p, i) => i === 0 || p.downloadedBytes >= progress[i - 1]!.downloadedBytes), 'progress only grows')
  t.match(cold.logs.find((l) => l.msg === 'model downloaded and verified')?.obj, { verifiedBy: 'sha256', mbPerS: Number })
  t.same(await cacheProblems(modelDir), [])

  // A restart: a new process with an empty counter, the same MODEL_DIR.
  const proxy = await faultProxy(t, s3.endpoint)
  const warm = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  const second = await warm.store.resolve()
  t.equal(second.source, 'cache')
  t.equal(second.dir, first.dir)
  t.match(warm.counters.snapshot(), { cacheHits: 1, cacheMisses: 0, downloadedBytes: 0, retries: 0, lastDownload: undefined })
  t.same(proxy.requests.map((r) => r.method), ['HEAD', 'HEAD'], 'only the two HEADs: model and manifest')
})

t.test('a new version is downloaded and the cache keeps MODEL_CACHE_KEEP versions', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const keys: string[] = []
  for (const version of ['v1', 'v2', 'v3']) {
    const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version })
    keys.push(pushed.modelKey)
    const { store, counters } = storeFor(t, s3.endpoint, modelDir, pushed.modelKey, { cacheKeep: 2 })
    const bundle = await store.resolve()
    t.equal(bundle.source, 's3', `${version} is downloaded`)
    t.equal(bundle.spec?.version, version)
    t.equal(counters.cacheMisses, 1)
  }
  const versions = await cachedVersions(modelDir)
  t.equal(versions.length, 2, 'the oldest version was deleted')
  t.notOk(versions.some((v) => v.includes('v1')), 'v1 is gone')
  t.same(await cacheProblems(modelDir), [])

  // Going back to v2 (still cached) is a hit; v1 must be downloaded again.
  t.equal((await storeFor(t, s3.endpoint, modelDir, keys[1]!).store.resolve()).source, 'cache')
  t.equal((await storeFor(t, s3.endpoint, modelDir, keys[0]!).store.resolve()).source, 's3')
  t.equal((await cachedVersions(modelDir)).length, 2)
})

t.test('the same key overwritten (push --force) is a new version: its ETag changed', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const a = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  const first = await storeFor(t, s3.endpoint, modelDir, a.modelKey).store.resolve()
  const b = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1', force: true })
  t.not(a.sha256, b.sha256)
  const second = await storeFor(t, s3.endpoint, modelDir, b.modelKey, { cacheKeep: 1 }).store.resolve()
  t.equal(second.source, 's3')
  t.not(second.dir, first.dir)
  t.equal(await hashFile(second.modelFile), b.sha256)
  t.equal((await cachedVersions(modelDir)).length, 1, 'keep 1: the replaced version is deleted')
})

t.test('missing bucket, missing key and no endpoint: one-line errors naming bucket and key', async (t) => {
  const { s3, modelDir } = await setup(t)
  const noBucket = s3Store({
    s3: { bucket: 'no-such-bucket', modelKey: 'skin/v1/model.onnx', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true },
    modelDir, tuning: TUNING, credentials: TEST_CREDENTIALS
  })
  t.teardown(() => noBucket.client.destroy())
  await t.rejects(noBucket.resolve(), { name: 'StoreError', message: 'NoSuchBucket: s3://no-such-bucket/skin/v1/model.onnx: the bucket does not exist (check S3_BUCKET)' })

  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'skin/v9/model.onnx').store.resolve(),
    { message: 'NoSuchKey: s3://models/skin/v9/model.onnx: no such key in the bucket (check S3_MODEL_KEY)' })

  const port = await closedPort()
  const { store, counters } = storeFor(t, `http://127.0.0.1:${port}`, modelDir, 'skin/v1/model.onnx')
  const err = await store.resolve().then(() => new Error('resolved'), (e: unknown) => e as Error)
  t.match(err, { message: /^EndpointUnreachable: s3:\/\/models\/skin\/v1\/model\.onnx: the S3 endpoint cannot be reached \(.*ECONNREFUSED.*\)$/ })
  t.notMatch(err.message, /\n/, 'one line')
  t.equal(counters.retries, (TUNING.retry.maxAttempts - 1) * 2, 'a refused connection is retried (HEAD model and manifest)')
  t.same(await cachedVersions(modelDir), [], 'nothing was cached')
})

t.test('AccessDenied (403 from the proxy): named, not retried; a verified cached copy is served instead', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  proxy.inject({ method: 'HEAD', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  const denied = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  await t.rejects(denied.store.resolve(), { message: /^AccessDenied: s3:\/\/models\/skin\/v1\/model\.onnx: access denied: these credentials may not read it/ })
  t.equal(denied.counters.retries, 0, 'a 403 is not retried')

  proxy.clear()
  await storeFor(t, proxy.endpoint, modelDir, pushed.modelKey).store.resolve()
  proxy.inject({ method: 'HEAD', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  const fallback = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  const bundle = await fallback.store.resolve()
  t.equal(bundle.source, 'cache')
  t.match(bundle.sourceError, /^AccessDenied: s3:\/\/models\/skin\/v1\/model\.onnx/)
  t.equal(bundle.spec?.version, 'v1')
  t.match(fallback.logs.find((l) => l.level === 'warn')?.msg, /serving the verified cached copy/)
})

t.test('S3 unreachable with a verified cached copy: served as cache, with the error', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  await storeFor(t, s3.endpoint, modelDir, pushed.modelKey).store.resolve()
  const port = await closedPort()
  const bundle = await storeFor(t, `http://127.0.0.1:${port}`, modelDir, pushed.modelKey).store.resolve()
  t.equal(bundle.source, 'cache')
  t.match(bundle.sourceError, /^EndpointUnreachable: /)

  // A damaged cached copy is not trusted, even as a fallback.
  await writeFile(bundle.modelFile, fakeOnnx(16))
  await t.rejects(storeFor(t, `http://127.0.0.1:${port}`, modelDir, pushed.modelKey).store.resolve(), { message: /^EndpointUnreachable/ })
  t.same(await cachedVersions(modelDir), [], 'the damaged copy was deleted')
})

t.test('a cached copy whose bytes changed on disk is downloaded again', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  const first = await storeFor(t, s3.endpoint, modelDir, pushed.modelKey).store.resolve()
  const bytes = await readFile(first.modelFile)
  bytes[100] = (bytes[100] as number) ^ 1
  await writeFile(first.modelFile, bytes)
  const again = storeFor(t, s3.endpoint, modelDir, pushed.modelKey)
  const second = await again.store.resolve()
  t.equal(second.source, 's3')
  t.match(again.counters.snapshot(), { cacheHits: 0, cacheMisses: 1 })
  t.match(again.logs.find((l) => l.level === 'warn'), { msg: /failed verification/ })
  t.equal(await hashFile(second.modelFile), pushed.sha256)
})

t.test('a model with no manifest is served, verified by its ETag (the MD5 of a single-part upload)', async (t) => {
  const { s3, modelDir } = await setup(t)
  const model = fakeOnnx(100_000)
  await s3.put(BUCKET, 'bare/model.onnx', model)
  const { store, logs } = storeFor(t, s3.endpoint, modelDir, 'bare/model.onnx')
  const bundle = await store.resolve()
  t.equal(bundle.source, 's3')
  t.equal(bundle.spec, undefined, 'the engine reads the spec from the model file')
  t.same(await readFile(bundle.modelFile), model)
  t.match(logs.find((l) => l.msg === 'model downloaded and verified')?.obj, { verifiedBy: 'etag-md5' })
  t.equal((await storeFor(t, s3.endpoint, modelDir, 'bare/model.onnx').store.resolve()).source, 'cache')

  // Flipped bytes are caught by the MD5 as well.
  const proxy = await faultProxy(t, s3.endpoint)
  await s3.put(BUCKET, 'bare2/model.onnx', model)
  proxy.inject({ method: 'GET', times: Infinity, fault: { kind: 'flip', atByte: 5000 } })
  const flipped = storeFor(t, proxy.endpoint, modelDir, 'bare2/model.onnx')
  await t.rejects(flipped.store.resolve(), { message: /^IntegrityError: s3:\/\/models\/bare2\/model\.onnx: MD5 of model\.onnx is [0-9a-f]{32}, its ETag says/ })
  t.same(await cacheProblems(modelDir), [])
})

t.test('a multipart upload without manifest cannot be verified: served, with a warning', async (t) => {
  const { s3, modelDir } = await setup(t)
  const { Upload } = await import('@aws-sdk/lib-storage')
  await new Upload({ client: s3.client, params: { Bucket: BUCKET, Key: 'mp/model.onnx', Body: fakeOnnx(6 * 1024 * 1024) }, partSize: 5 * 1024 * 1024 }).done()
  const { store, logs } = storeFor(t, s3.endpoint, modelDir, 'mp/model.onnx')
  t.equal((await store.resolve()).source, 's3')
  t.match(logs.find((l) => l.level === 'warn')?.msg, /cannot be verified/)
})

t.test('503 SlowDown twice, then success', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: 2, fault: { kind: 'status', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' } })
  const { store, counters, logs } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  const bundle = await store.resolve()
  t.equal(bundle.source, 's3')
  t.equal(counters.retries, 2)
  t.match(logs.filter((l) => l.msg === 'S3 request failed; retrying').map((l) => l.obj.reason), [/SlowDown/, /SlowDown/])
  t.same(proxy.requests.filter((r) => r.path.endsWith('model.onnx') && r.method === 'GET').map((r) => r.fault), ['status', 'status', undefined])
  t.same(await cacheProblems(modelDir), [])
})

t.test('503 on every attempt: fails after S3_MAX_ATTEMPTS, nothing cached', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: Infinity, fault: { kind: 'status', status: 503, code: 'SlowDown' } })
  const { store, counters } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  await t.rejects(store.resolve(), { message: /^SlowDown: s3:\/\/models\/skin\/v1\/model\.onnx: S3 answered 503/ })
  t.equal(counters.retries, TUNING.retry.maxAttempts - 1)
  t.same(await cachedVersions(modelDir), [])
  t.same(await cacheProblems(modelDir), [])
})

t.test('a connection reset mid-body is resumed with a Range request', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1', model: fakeOnnx(3 * 1024 * 1024) })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: 2, fault: { kind: 'reset', afterBytes: 1024 * 1024 } })
  const { store, counters } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  const bundle = await store.resolve()
  t.equal(await hashFile(bundle.modelFile), pushed.sha256)
  t.equal(counters.retries, 2)
  const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith('model.onnx'))
  t.equal(gets.length, 3)
  t.equal(gets[0]!.range, undefined, 'the first request streams the whole object')
  const resumedAt = gets.slice(1).map((r) => Number(/^bytes=(\d+)-\d*$/.exec(r.range ?? '')?.[1]))
  t.ok(resumedAt[0]! > 0 && resumedAt[1]! > resumedAt[0]!, `each resume starts where the last stopped (${resumedAt.join(', ')})`)
  t.ok(counters.downloadedBytes < 2 * pushed.bytes, 'resumed, not downloaded again from zero')
  t.same(await cacheProblems(modelDir), [])
})

t.test('flipped bytes: the sha256 mismatch is rejected, nothing is cached, and it is downloaded again', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: 1, fault: { kind: 'flip', atByte: 1234 } })
  const { store, counters, logs } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey)
  const bundle = await store.resolve()
  t.equal(await hashFile(bundle.modelFile), pushed.sha256)
  t.equal(counters.retries, 1)
  t.match(logs.find((l) => l.msg === 'S3 request failed; retrying')?.obj.reason, /sha256 of model\.onnx is [0-9a-f]{64}, the manifest pins/)
  t.same(await cacheProblems(modelDir), [])

  // Corrupt on every attempt: rejected, and the cache holds nothing from it.
  const dir2 = await scratchDir(t)
  proxy.inject({ method: 'GET', path: 'model.onnx', times: Infinity, fault: { kind: 'flip', atByte: 99 } })
  await t.rejects(storeFor(t, proxy.endpoint, dir2, pushed.modelKey).store.resolve(), { name: 'StoreError', message: /^IntegrityError: / })
  t.same(await cachedVersions(dir2), [])
  t.same(await cacheProblems(dir2), [])
})

t.test('a stalled response: the stall timeout fires and the download resumes', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1', model: fakeOnnx(1024 * 1024) })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: 1, fault: { kind: 'stall', afterBytes: 300_000 } })
  const { store, counters, logs } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey, { stallTimeoutMs: 300 })
  const started = Date.now()
  const bundle = await store.resolve()
  t.ok(Date.now() - started < 5000, 'did not hang')
  t.equal(await hashFile(bundle.modelFile), pushed.sha256)
  t.equal(counters.retries, 1)
  t.match(logs.find((l) => l.msg === 'S3 request failed; retrying')?.obj, { reason: /stall|timed out/i, resumeAt: Number })

  // Stalled before any byte, on every attempt: fails in bounded time, nothing cached.
  const dir2 = await scratchDir(t)
  proxy.inject({ method: 'GET', path: 'model.onnx', times: Infinity, fault: { kind: 'stall', afterBytes: 0 } })
  await t.rejects(storeFor(t, proxy.endpoint, dir2, pushed.modelKey, { stallTimeoutMs: 200 }).store.resolve(),
    { message: /^Timeout: s3:\/\/models\/skin\/v1\/model\.onnx: S3 went silent .*timed out after 200 ms/ })
  t.same(await cachedVersions(dir2), [])
  t.same(await cacheProblems(dir2), [])
})

t.test('parallel ranged GETs: ordered, verified on the fly, a reset part resumes', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1', model: fakeOnnx(2 * 1024 * 1024 + 123) })
  proxy.inject({ method: 'GET', path: 'model.onnx', times: 1, fault: { kind: 'reset', afterBytes: 100_000 } })
  const { store, counters } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey, { downloadStreams: 4, partSizeBytes: 256 * 1024 })
  const bundle = await store.resolve()
  t.equal(await hashFile(bundle.modelFile), pushed.sha256)
  t.equal(counters.retries, 1)
  const ranges = proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith('model.onnx')).map((r) => r.range)
  t.equal(ranges.length, 9 + 1, 'nine parts and one resumed part')
  t.ok(ranges.every((r) => r !== undefined && /^bytes=\d+-\d+$/.test(r)))
  t.same(await cacheProblems(modelDir), [])

  // A part that cannot be fetched stops the others; nothing is left behind.
  const dir2 = await scratchDir(t)
  proxy.inject({ method: 'GET', path: 'model.onnx', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  await t.rejects(storeFor(t, proxy.endpoint, dir2, pushed.modelKey, { downloadStreams: 4, partSizeBytes: 256 * 1024 }).store.resolve(), { message: /^AccessDenied/ })
  t.same(await cacheProblems(dir2), [])
  t.same(await cachedVersions(dir2), [])
})

t.test('a manifest that does not fit its key, or lists unsafe files, is refused before any model byte', async (t) => {
  const { s3, modelDir } = await setup(t)
  const manifest = (over: Record<string, unknown>) => JSON.stringify({
    name: 'x', version: 'v1', format: 'onnx', file: 'model.onnx', input: { name: 'input', layout: 'NCHW', width: 8, height: 8, mean: [0, 0, 0], std: [1, 1, 1] },
    output: { name: 'out', activation: 'none' }, labels: ['a'], ...over
  })
  await s3.put(BUCKET, 'a/model.onnx', 'x')
  await s3.put(BUCKET, 'a/manifest.json', manifest({ file: 'other.onnx', sha256: { 'other.onnx': 'a'.repeat(64) } }))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'a/model.onnx').store.resolve(), { message: 'ManifestMismatch: s3://models/a/model.onnx: the manifest beside it describes "other.onnx"' })
  await s3.put(BUCKET, 'b/model.onnx', 'x')
  await s3.put(BUCKET, 'b/manifest.json', manifest({ sha256: { 'model.onnx': 'a'.repeat(64), '../../escape': 'b'.repeat(64) } }))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'b/model.onnx').store.resolve(), { message: /^ManifestInvalid: .*unsafe file name "\.\.\/\.\.\/escape"/ })
  await s3.put(BUCKET, 'c/model.onnx', 'x')
  await s3.put(BUCKET, 'c/manifest.json', '{not json')
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'c/model.onnx').store.resolve(), { message: /^ManifestError: s3:\/\/models\/c\/model\.onnx: manifest\.json is not JSON/ })
  t.same(await cachedVersions(modelDir), [])
  t.same(await cacheProblems(modelDir), [])
})

t.test('extra files the manifest pins are downloaded in parallel and verified', async (t) => {
  const { s3, modelDir } = await setup(t)
  const model = fakeOnnx(50_000)
  const data = randomBytes(70_000)
  const { createHash } = await import('node:crypto')
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
  await s3.put(BUCKET, 'x/model.onnx', model)
  await s3.put(BUCKET, 'x/model.onnx.data', data)
  await s3.put(BUCKET, 'x/manifest.json', JSON.stringify({
    name: 'x', version: 'v1', format: 'onnx', file: 'model.onnx', sha256: { 'model.onnx': sha(model), 'model.onnx.data': sha(data) },
    input: { name: 'input', layout: 'NCHW', width: 8, height: 8, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'out', activation: 'none' }, labels: ['a']
  }))
  const progress: DownloadProgress[] = []
  const bundle = await storeFor(t, s3.endpoint, modelDir, 'x/model.onnx').store.resolve((p) => progress.push(p))
  t.same(await readFile(join(bundle.dir, 'model.onnx.data')), data)
  t.equal(progress.at(-1)?.downloadedBytes, progress.at(-1)?.totalBytes)
  t.same(await cacheProblems(modelDir), [])
  await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'x/model.onnx.data' }))
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'x/model.onnx', Body: fakeOnnx(10) }))
  await t.rejects(storeFor(t, s3.endpoint, await scratchDir(t), 'x/model.onnx').store.resolve(), { message: /^NoSuchKey: / })
})

t.test('keys that would escape MODEL_DIR stay inside it', async (t) => {
  const { s3, modelDir } = await setup(t)
  for (const key of ['../../escape/model.onnx', '/abs/model.onnx', 'sp ace/ü/../model.onnx', 'model.onnx', 'x/mödel v2.onnx']) {
    await s3.put(BUCKET, key, fakeOnnx(1000))
    const bundle = await storeFor(t, s3.endpoint, modelDir, key).store.resolve()
    t.ok(bundle.dir.startsWith(join(modelDir, 's3', BUCKET) + '/'), `${key} → ${bundle.dir}`)
    t.notMatch(bundle.dir.slice(modelDir.length), /\/\.\.?\//)
    t.match(bundle.modelFile, /\/(model\.onnx)$/, 'an unsafe file name is stored as model.onnx')
  }
  t.same(await cacheProblems(modelDir), [])
})

t.test('HEAD failures other than a missing manifest are named; a HeadBucket that fails leaves it at NoSuchKey', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  proxy.inject({ method: 'HEAD', path: 'manifest.json', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  await t.rejects(storeFor(t, proxy.endpoint, modelDir, pushed.modelKey).store.resolve(), { message: /^AccessDenied: s3:\/\/models\/skin\/v1\/manifest\.json: access denied/ })
  proxy.clear()
  proxy.inject({ method: 'HEAD', path: /^\/models\/?$/, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  await t.rejects(storeFor(t, proxy.endpoint, modelDir, 'skin/v9/model.onnx').store.resolve(), { message: /^NoSuchKey: / })
})

t.test('a download that takes a while logs its progress (bytes, MB/s) about once a second', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const proxy = await faultProxy(t, s3.endpoint)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1', model: fakeOnnx(1_300_000) })
  proxy.throttle(1_000_000)
  const { store, logs } = storeFor(t, proxy.endpoint, modelDir, pushed.modelKey, { downloadStreams: 1 })
  await store.resolve()
  const progress = logs.filter((l) => l.msg === 'downloading model')
  t.ok(progress.length >= 1)
  t.match(progress[0]?.obj, { s3: 's3://models/skin/v1/model.onnx', downloadedBytes: Number, totalBytes: Number, mbPerS: Number })
})

t.test('another process committing the same version first: its copy is used if it verifies', async (t) => {
  const { s3, modelDir, tmp } = await setup(t)
  const pushed = await publish(s3, tmp, { bucket: BUCKET, prefix: 'skin', version: 'v1' })
  const cache = await import('../../src/models/cache.js')
  // The rival commits the very same verified folder a moment before us.
  const rival = async (staging: string, dest: string, marker: Parameters<typeof cache.commitStaging>[2]) => {
    await cache.commitStaging(staging, dest, marker)
    return false
  }
  const { s3Store: racing } = await t.mockImport<typeof import('../../src/models/s3-store.js')>('../../src/models/s3-store.js', {
    '../../src/models/cache.js': { ...cache, commitStaging: rival }
  })
  const options = { s3: { bucket: BUCKET, modelKey: pushed.modelKey, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true }, tuning: TUNING, credentials: TEST_CREDENTIALS }
  const store = racing({ ...options, modelDir })
  t.teardown(() => store.client.destroy())
  const bundle = await store.resolve()
  t.equal(bundle.source, 's3')
  t.equal(await hashFile(bundle.modelFile), pushed.sha256)

  // The rival's copy does not verify (here: there is none): a clear error, nothing left behind.
  const { s3Store: broken } = await t.mockImport<typeof import('../../src/models/s3-store.js')>('../../src/models/s3-store.js', {
    '../../src/models/cache.js': { ...cache, commitStaging: async () => false }
  })
  const dir2 = await scratchDir(t)
  const second = broken({ ...options, modelDir: dir2 })
  t.teardown(() => second.client.destroy())
  await t.rejects(second.resolve(), { message: /^CacheConflict: s3:\/\/models\/skin\/v1\/model\.onnx: another process wrote .* and it does not verify$/ })
  t.same(await cacheProblems(dir2), [])
})

t.test('replacing a serving version: failures are thrown (no cached fallback) and the serving folder is never pruned', async (t) => {
  const { s3, modelDir } = await setup(t)
  await putLive(s3, BUCKET, 'live', 'v1', fakeOnnx(2048))
  const { store } = storeFor(t, s3.endpoint, modelDir, 'live/model.onnx', { cacheKeep: 1 })
  const serving = await store.resolve()
  const replacing = { replacing: { keep: serving.dir } }

  await putLive(s3, BUCKET, 'live', 'v2', fakeOnnx(2048), { sha256: { 'model.onnx': 'a'.repeat(64) } })
  await t.rejects(store.resolve(undefined, undefined, replacing), { name: 'StoreError', message: /sha256/ }, 'a bad download is an error, not the cached v1')
  await putLive(s3, BUCKET, 'live', 'v3', fakeOnnx(2048), { format: 'keras-h5' })
  await t.rejects(store.resolve(undefined, undefined, replacing), { name: 'StoreError' }, 'a version that cannot be served is an error too')
  const port = await closedPort()
  await t.rejects(storeFor(t, `http://127.0.0.1:${port}`, modelDir, 'live/model.onnx').store.resolve(undefined, undefined, replacing), { message: /^EndpointUnreachable/ })

  await putLive(s3, BUCKET, 'live', 'v4', fakeOnnx(2048))
  const next = await store.resolve(undefined, undefined, replacing)
  t.equal(next.spec?.version, 'v4')
  const kept = await cachedVersions(modelDir)
  t.ok(kept.some((v) => serving.dir.endsWith(v)) && kept.some((v) => next.dir.endsWith(v)), `MODEL_CACHE_KEEP=1 keeps both while swapping (${kept.join(', ')})`)
  t.same(await cacheProblems(modelDir), [])
})
