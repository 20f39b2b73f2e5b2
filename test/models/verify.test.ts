// verifyCache: the cache re-hashed against its manifests and against S3.
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { ModelStoreConfig } from '../../src/config.js'
import { MARKER_FILE } from '../../src/models/cache.js'
import { s3Store } from '../../src/models/s3-store.js'
import { verifyCache } from '../../src/models/verify.js'
import { TEST_CREDENTIALS, fakeOnnx, fakeS3, publish, scratchDir } from '../helpers/s3.js'

const TUNING: ModelStoreConfig = {
  cacheKeep: 5, connectTimeoutMs: 1000, stallTimeoutMs: 2000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 }, downloadStreams: 1, partSizeBytes: 1 << 20
}

function storeFor (t: Test, endpoint: string, modelDir: string, modelKey: string) {
  const store = s3Store({ s3: { bucket: 'm', modelKey, region: 'us-east-1', endpoint, forcePathStyle: true }, modelDir, tuning: TUNING, credentials: TEST_CREDENTIALS })
  t.teardown(() => store.client.destroy())
  return store
}

t.test('a cache that matches S3 verifies; older versions are listed as such', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const modelDir = await scratchDir(t)
  const tmp = await scratchDir(t)
  const v1 = await publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1' })
  await storeFor(t, s3.endpoint, modelDir, v1.modelKey).resolve()
  await publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1', force: true })
  const store = storeFor(t, s3.endpoint, modelDir, v1.modelKey)
  let report = await verifyCache(store, modelDir)
  t.match(report, { ok: false, s3Error: undefined, entries: [{ version: 'v1', problem: undefined, current: false, s3: undefined }] }, 'the current version is not cached')

  const bundle = await store.resolve()
  report = await verifyCache(store, modelDir)
  t.equal(report.ok, true)
  t.equal(report.entries.length, 2)
  t.match(report.entries.find((e) => e.current), { dir: bundle.dir, version: 'v1', problem: undefined, s3: 'match' })

  // A consistent local forgery (file and marker rewritten together) passes the local check but not S3's.
  const forged = randomBytes(100)
  await writeFile(bundle.modelFile, forged)
  const marker = JSON.parse(await readFile(join(bundle.dir, MARKER_FILE), 'utf8'))
  marker.sha256['model.onnx'] = createHash('sha256').update(forged).digest('hex')
  await writeFile(join(bundle.dir, MARKER_FILE), JSON.stringify(marker))
  report = await verifyCache(store, modelDir)
  t.match(report.entries.find((e) => e.current), { problem: 'model.onnx is not the file its manifest pins' })
  const manifest = JSON.parse(await readFile(join(bundle.dir, 'manifest.json'), 'utf8'))
  manifest.sha256['model.onnx'] = marker.sha256['model.onnx']
  const manifestText = JSON.stringify(manifest)
  await writeFile(join(bundle.dir, 'manifest.json'), manifestText)
  marker.sha256['manifest.json'] = createHash('sha256').update(manifestText).digest('hex')
  await writeFile(join(bundle.dir, MARKER_FILE), JSON.stringify(marker))
  report = await verifyCache(store, modelDir)
  t.match(report, { ok: false, entries: [{ current: true, problem: undefined, s3: 'differs' }] }, 'only S3 can tell')
})

t.test('bundles without a manifest are compared by their MD5 ETag when there is one', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const modelDir = await scratchDir(t)
  await s3.put('m', 'bare/model.onnx', fakeOnnx(1000))
  const store = storeFor(t, s3.endpoint, modelDir, 'bare/model.onnx')
  await store.resolve()
  t.match(await verifyCache(store, modelDir), { ok: true, entries: [{ version: 'no manifest', current: true, s3: 'match' }] })

  // The same forgery on a bundle without manifest: the ETag's MD5 catches it.
  const bare = await store.resolve()
  const forged = randomBytes(1000)
  await writeFile(bare.modelFile, forged)
  const marker = JSON.parse(await readFile(join(bare.dir, MARKER_FILE), 'utf8'))
  marker.sha256['model.onnx'] = createHash('sha256').update(forged).digest('hex')
  await writeFile(join(bare.dir, MARKER_FILE), JSON.stringify(marker))
  t.match(await verifyCache(store, modelDir), { ok: false, entries: [{ current: true, problem: undefined, s3: 'differs' }] })

  // An unreadable marker: damaged, and nothing to say about its version.
  await writeFile(join(bare.dir, MARKER_FILE), '{')
  t.match(await verifyCache(store, modelDir), { ok: false, entries: [{ version: undefined, problem: /is missing or invalid/, s3: undefined }] })

  const { Upload } = await import('@aws-sdk/lib-storage')
  await new Upload({ client: s3.client, params: { Bucket: 'm', Key: 'mp/model.onnx', Body: fakeOnnx(6 << 20) }, partSize: 5 << 20 }).done()
  const multipart = storeFor(t, s3.endpoint, modelDir, 'mp/model.onnx')
  await multipart.resolve()
  t.match(await verifyCache(multipart, modelDir), { ok: true, entries: [{ current: true, s3: 'unverifiable' }] })

  await s3.put('m', 'nopins/model.onnx', 'x')
  await s3.put('m', 'nopins/manifest.json', JSON.stringify({
    name: 'x', version: 'v0', format: 'onnx', file: 'model.onnx', input: { name: 'i', layout: 'NCHW', width: 8, height: 8, mean: [0, 0, 0], std: [1, 1, 1] },
    output: { name: 'o', activation: 'none' }, labels: ['a']
  }))
  const nopins = storeFor(t, s3.endpoint, modelDir, 'nopins/model.onnx')
  await nopins.resolve()
  t.match(await verifyCache(nopins, modelDir), { ok: true, entries: [{ version: 'v0', s3: 'unverifiable' }] })
})

t.test('S3 unreachable: the local check still runs and the report says why it is not ok', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const modelDir = await scratchDir(t)
  const pushed = await publish(s3, await scratchDir(t), { bucket: 'm', prefix: 'p', version: 'v1' })
  await storeFor(t, s3.endpoint, modelDir, pushed.modelKey).resolve()
  await s3.close()
  const report = await verifyCache(storeFor(t, s3.endpoint, modelDir, pushed.modelKey), modelDir)
  t.match(report, { ok: false, currentVersion: undefined, s3Error: /^EndpointUnreachable: /, entries: [{ problem: undefined, current: false }] })
})
