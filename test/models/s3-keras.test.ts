// Keras and TF.js models in S3: downloaded with their side files, converted once into the cache
// beside the verified source, reused on a warm boot, converted again after a converter upgrade,
// and refused (once, recorded) when the converter cannot read them.
import { readFile, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { ModelStoreConfig } from '../../src/config.js'
import { CONVERTER_VERSION } from '../../src/convert/convert.js'
import { readMarker, rewriteMarker, createStaging } from '../../src/models/cache.js'
import { convertedFileName } from '../../src/models/converted.js'
import { s3Store } from '../../src/models/s3-store.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import {
  ENSEMBLE_KEY, ENSEMBLE_RESULTS_KEY, FACIAL_RESULTS, LAMBDA_H5, MINI_ENSEMBLE_H5, MINI_ENSEMBLE_TFJS, SEQUENTIAL_H5, TEAM_LABELS, kerasFixture
} from '../helpers/keras.js'
import { TEST_CREDENTIALS, cacheProblems, cachedVersions, fakeS3, scratchDir, type FakeS3 } from '../helpers/s3.js'

const BUCKET = 'shine-skincare-models'
const TUNING: ModelStoreConfig = {
  cacheKeep: 3, connectTimeoutMs: 1000, stallTimeoutMs: 5000, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, downloadStreams: 1, partSizeBytes: 64 * 1024
}

function storeFor (t: Test, endpoint: string, modelDir: string, key: string) {
  const logs: string[] = []
  const store = s3Store({
    s3: { bucket: BUCKET, modelKey: key, region: 'us-east-1', endpoint, forcePathStyle: true },
    modelDir, tuning: TUNING, credentials: TEST_CREDENTIALS,
    log: { info: (_o, msg) => { logs.push(msg) }, warn: (_o, msg) => { logs.push(msg) } }
  })
  t.teardown(() => store.client.destroy())
  const converting: string[] = []
  const resolve = async () => await store.resolve(undefined, (format) => { converting.push(format) })
  return { store, resolve, converting, logs }
}

async function setup (t: Test): Promise<{ s3: FakeS3, modelDir: string }> {
  const s3 = await fakeS3(t)
  await s3.createBucket(BUCKET)
  return { s3, modelDir: await scratchDir(t) }
}

t.test('the team\'s layout: .h5 + facial_results.json, no manifest → converted once, labels in their order; a restart converts nothing', async (t) => {
  const { s3, modelDir } = await setup(t)
  await s3.put(BUCKET, ENSEMBLE_KEY, await readFile(MINI_ENSEMBLE_H5))
  await s3.put(BUCKET, ENSEMBLE_RESULTS_KEY, FACIAL_RESULTS)

  const cold = storeFor(t, s3.endpoint, modelDir, ENSEMBLE_KEY)
  const first = await cold.resolve()
  t.match(first, { source: 's3', format: 'keras-h5', spec: undefined, labels: { file: 'facial_results.json', labels: TEAM_LABELS } })
  t.same(cold.converting, ['keras-h5'], '/health is told a conversion runs')
  t.equal(first.modelFile, join(first.dir, convertedFileName(CONVERTER_VERSION)), 'the ONNX sits beside its verified source')
  t.equal(first.sourceFile, join(first.dir, 'best_facial_model.h5'))
  t.match(first.conversion, { format: 'keras-h5', parameters: Number, ms: Number, layers: { Dense: 3 } })
  const marker = await readMarker(first.dir)
  t.match(marker, {
    file: 'best_facial_model.h5',
    converted: { file: convertedFileName(CONVERTER_VERSION), format: 'keras-h5', converter: CONVERTER_VERSION, from: marker?.sha256['best_facial_model.h5'] }
  })
  t.same(Object.keys(marker?.sha256 ?? {}).sort(), ['best_facial_model.h5', convertedFileName(CONVERTER_VERSION), 'facial_results.json'])
  t.same(await cacheProblems(modelDir), [], 'every file in the folder re-hashes to its marker')

  const proxy = await faultProxy(t, s3.endpoint)
  const warm = storeFor(t, proxy.endpoint, modelDir, ENSEMBLE_KEY)
  const second = await warm.resolve()
  t.match(second, { source: 'cache', modelFile: first.modelFile, format: 'keras-h5', labels: { labels: TEAM_LABELS } })
  t.same(warm.converting, [], 'no conversion on a warm boot')
  t.ok(proxy.requests.every((r) => r.method === 'HEAD'), 'nothing downloaded')
  t.equal(proxy.requests.length, 5, 'model, manifest (404) and the three label file names')

  // A converter upgrade: the cached conversion is from another version, so it is redone.
  const old = convertedFileName('shine-keras-onnx/0')
  await rename(first.modelFile, join(first.dir, old))
  const { [convertedFileName(CONVERTER_VERSION)]: sha, ...rest } = marker!.sha256
  const staging = await createStaging(join(first.dir, '..'))
  await rewriteMarker(first.dir, { ...marker!, sha256: { ...rest, [old]: sha! }, converted: { ...marker!.converted!, file: old, converter: 'shine-keras-onnx/0' } }, staging)
  await rm(staging, { recursive: true })
  const upgraded = storeFor(t, s3.endpoint, modelDir, ENSEMBLE_KEY)
  const third = await upgraded.resolve()
  t.same(upgraded.converting, ['keras-h5'], 'converted again')
  t.equal(third.modelFile, first.modelFile)
  t.notOk((await readdir(first.dir)).includes(old), 'the old conversion is deleted')
  t.same(await cacheProblems(modelDir), [])
})

t.test('a TF.js layers model: model.json first, then the shards it names', async (t) => {
  const { s3, modelDir } = await setup(t)
  await s3.put(BUCKET, 'web/model.json', await readFile(MINI_ENSEMBLE_TFJS))
  await s3.put(BUCKET, 'web/group1-shard1of1.bin', await readFile(kerasFixture('mini_ensemble/tfjs/group1-shard1of1.bin')))
  await s3.put(BUCKET, 'web/labels.json', JSON.stringify({ labels: TEAM_LABELS }))
  const store = storeFor(t, s3.endpoint, modelDir, 'web/model.json')
  const bundle = await store.resolve()
  t.match(bundle, { source: 's3', format: 'tfjs', labels: { file: 'labels.json', labels: TEAM_LABELS } })
  t.same((await readdir(bundle.dir)).sort(), ['.verified.json', convertedFileName(CONVERTER_VERSION), 'group1-shard1of1.bin', 'labels.json', 'model.json'])
  t.same(await cacheProblems(modelDir), [])

  await s3.put(BUCKET, 'lost/model.json', await readFile(MINI_ENSEMBLE_TFJS))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'lost/model.json').resolve(), { message: /^NoSuchKey: s3:\/\/shine-skincare-models\/lost\/model\.json: / }, 'a missing shard')
  t.same(await cacheProblems(modelDir), [], 'nothing half-written')
})

t.test('a version the converter refuses is recorded, not converted again, and the previous good version is served', async (t) => {
  const { s3, modelDir } = await setup(t)
  await s3.put(BUCKET, 'skin/model.h5', await readFile(SEQUENTIAL_H5))
  const good = await storeFor(t, s3.endpoint, modelDir, 'skin/model.h5').resolve()
  t.match(good, { source: 's3', format: 'keras-h5' })

  await s3.put(BUCKET, 'skin/model.h5', await readFile(LAMBDA_H5))
  const bad = storeFor(t, s3.endpoint, modelDir, 'skin/model.h5')
  const served = await bad.resolve()
  t.match(served, { source: 'cache', dir: good.dir, sourceError: /^Unconvertible: s3:\/\/shine-skincare-models\/skin\/model\.h5: .*Lambda.*never run.*\(this version cannot be served: publish a new one\)$/ })
  t.same(bad.converting, ['keras-h5'])
  const versions = await cachedVersions(modelDir)
  t.equal(versions.length, 2, 'the refused version is kept (its bytes are verified) but not served')
  const refused = versions.map((v) => join(modelDir, 's3', v)).find((d) => d !== good.dir)!
  t.match(await readMarker(refused), { conversionFailed: { converter: CONVERTER_VERSION, message: /Lambda/ } })
  t.same(await cacheProblems(modelDir), [], 'no converted file, no staging left')

  const again = storeFor(t, s3.endpoint, modelDir, 'skin/model.h5')
  t.match(await again.resolve(), { source: 'cache', dir: good.dir, sourceError: /Lambda/ })
  t.same(again.converting, [], 'the same bytes are not converted twice by the same converter')

  const fresh = storeFor(t, s3.endpoint, await scratchDir(t), 'skin/model.h5')
  await t.rejects(fresh.resolve(), { name: 'StoreError', message: /^Unconvertible: .*Lambda/ }, 'no good version to fall back to')
})

t.test('a manifest\'s format must agree with the file', async (t) => {
  const { s3, modelDir } = await setup(t)
  const manifest = (format: string, file: string) => JSON.stringify({
    name: 'x', version: 'v1', format, file, input: { name: 'image', layout: 'NHWC', width: 12, height: 12, mean: [0, 0, 0], std: [1, 1, 1] },
    output: { name: 'predictions', activation: 'none' }, labels: ['a', 'b', 'c', 'd']
  })
  await s3.put(BUCKET, 'a/model.h5', await readFile(SEQUENTIAL_H5))
  await s3.put(BUCKET, 'a/manifest.json', manifest('tfjs', 'model.h5'))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'a/model.h5').resolve(), { message: /^Unconvertible: .*manifest\.json says format "tfjs" but s3:\/\/shine-skincare-models\/a\/model\.h5 is a keras-h5 model/ })
  await s3.put(BUCKET, 'b/model.h5', await readFile(SEQUENTIAL_H5))
  await s3.put(BUCKET, 'b/manifest.json', manifest('onnx', 'model.h5'))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'b/model.h5').resolve(), { message: /manifest\.json says format "onnx" but .* looks like a keras-h5 model/ })
  await s3.put(BUCKET, 'c/model.h5', await readFile(SEQUENTIAL_H5))
  await s3.put(BUCKET, 'c/manifest.json', manifest('keras-h5', 'model.h5'))
  const ok = await storeFor(t, s3.endpoint, modelDir, 'c/model.h5').resolve()
  t.match(ok, { format: 'keras-h5', spec: { format: 'keras-h5', labels: ['a', 'b', 'c', 'd'] }, labels: undefined })
  t.same(await cacheProblems(modelDir), [])
})

t.test('side files and shards that cannot be used are named', async (t) => {
  const { s3, modelDir } = await setup(t)
  await s3.put(BUCKET, 'r/model.json', JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['.verified.json'], weights: [] }] }))
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'r/model.json').resolve(), { message: 'ManifestInvalid: s3://shine-skincare-models/r/model.json: model.json names a reserved shard file ".verified.json"' })
  await s3.put(BUCKET, 'j/model.json', '{"hello":"world"}')
  await t.rejects(storeFor(t, s3.endpoint, modelDir, 'j/model.json').resolve(), { message: /^Unconvertible: .*is JSON but not a TF\.js layers model/ })
  t.same(await cacheProblems(modelDir), [])

  await s3.put(BUCKET, ENSEMBLE_KEY, await readFile(SEQUENTIAL_H5))
  const proxy = await faultProxy(t, s3.endpoint)
  proxy.inject({ method: 'HEAD', path: /facial_results\.json/, times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  await t.rejects(storeFor(t, proxy.endpoint, modelDir, ENSEMBLE_KEY).resolve(), { message: /^AccessDenied: s3:\/\/shine-skincare-models\/hare_run_v6\/hare_run_v6_facial\/facial_results\.json: / })
})
