// Publishing and listing versions against fauxqs.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { PublishInputError, VersionExistsError, listVersions, pushModel, versionKey } from '../../src/models/publish.js'
import { TINY_MANIFEST, fakeS3, publish, scratchDir } from '../helpers/s3.js'

t.test('push writes <prefix>/<version>/<file> then manifest.json with the sha256 filled in', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const tmp = await scratchDir(t)
  const progress: Array<[number, number]> = []
  const modelPath = join(tmp, 'net.onnx')
  const model = randomBytes(12 * 1024 * 1024)
  await writeFile(modelPath, model)
  const result = await pushModel({
    client: s3.client, bucket: 'm', prefix: '/skin/hare/', modelPath, manifest: { ...TINY_MANIFEST, file: undefined, version: '2026-11-01.1' },
    partSize: 5 * 1024 * 1024, onProgress: (sent, total) => progress.push([sent, total])
  })
  t.match(result, { modelKey: 'skin/hare/2026-11-01.1/net.onnx', manifestKey: 'skin/hare/2026-11-01.1/manifest.json', version: '2026-11-01.1', bytes: model.length, existed: false, uploaded: true })
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'm', Key: result.modelKey }))
  t.match(head.ETag, /-3"$/, 'a multipart upload (fauxqs takes at most ~11 MiB per request)')
  t.same(head.Metadata, { sha256: result.sha256, 'model-version': '2026-11-01.1' })
  const manifest = JSON.parse(await (await s3.client.send(new GetObjectCommand({ Bucket: 'm', Key: result.manifestKey }))).Body!.transformToString())
  t.same(manifest.sha256, { 'net.onnx': result.sha256 })
  t.equal(manifest.file, 'net.onnx', 'the file name defaults to the model file')
  t.same(progress.at(-1), [model.length, model.length])
})

t.test('an existing version is refused unless forced; a dry run uploads nothing', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const tmp = await scratchDir(t)
  const first = await publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1' })
  await t.rejects(publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1' }), VersionExistsError)
  await t.rejects(publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1' }), { message: 's3://m/p/v1/ already holds version v1; pass --force to overwrite it' })
  const forced = await publish(s3, tmp, { bucket: 'm', prefix: 'p', version: 'v1', force: true })
  t.match(forced, { existed: true, uploaded: true })
  t.not(forced.sha256, first.sha256)

  const modelPath = join(tmp, 'dry.onnx')
  await writeFile(modelPath, 'dry')
  const dry = await pushModel({ client: s3.client, bucket: 'm', prefix: 'p', modelPath, manifest: { ...TINY_MANIFEST, version: 'v2' }, dryRun: true })
  t.match(dry, { existed: false, uploaded: false, modelKey: 'p/v2/model.onnx' })
  t.match(await s3.client.send(new HeadObjectCommand({ Bucket: 'm', Key: 'p/v2/model.onnx' })).catch((e: unknown) => e), { $metadata: { httpStatusCode: 404 } })
  t.match(await pushModel({ client: s3.client, bucket: 'm', prefix: 'p', modelPath, manifest: TINY_MANIFEST, version: 'v1', dryRun: true }), { existed: true, uploaded: false })
})

t.test('bad input is refused before anything is uploaded', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const modelPath = join(await scratchDir(t), 'model.onnx')
  await writeFile(modelPath, 'x')
  const push = (manifest: Record<string, unknown>, version?: string) => pushModel({ client: s3.client, bucket: 'm', prefix: 'p', modelPath, manifest, version })
  await t.rejects(push(TINY_MANIFEST), { name: 'PublishInputError', message: /^version null must be/ })
  await t.rejects(push(TINY_MANIFEST, '../x'), { message: /^version "\.\.\/x" must be/ })
  await t.rejects(push({ ...TINY_MANIFEST, labels: [] }, 'v1'), PublishInputError)
  await t.rejects(push({ ...TINY_MANIFEST, file: '../evil' }, 'v1'), { message: /manifest\.json is invalid/ })
  t.equal(versionKey('', 'v1', 'model.onnx'), 'v1/model.onnx')
})

t.test('list: every bundle under a prefix, newest first, across pages, with unreadable ones flagged', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const tmp = await scratchDir(t)
  await publish(s3, tmp, { bucket: 'm', prefix: 'skin', version: 'v1' })
  await publish(s3, tmp, { bucket: 'm', prefix: 'skin', version: 'v2' })
  await publish(s3, tmp, { bucket: 'm', prefix: 'other', version: 'v9' })
  await s3.client.send(new PutObjectCommand({ Bucket: 'm', Key: 'skin/broken/manifest.json', Body: '{' }))
  const lone = JSON.stringify({ ...TINY_MANIFEST, version: 'v0' })
  await s3.client.send(new PutObjectCommand({ Bucket: 'm', Key: 'skin/lone/manifest.json', Body: lone }))
  // More than one page of ListObjectsV2 (1000 keys).
  for (let i = 0; i < 1005; i += 67) {
    await Promise.all(Array.from({ length: Math.min(67, 1005 - i) }, async (_, j) =>
      await s3.client.send(new PutObjectCommand({ Bucket: 'm', Key: `skin/noise/${String(i + j).padStart(4, '0')}`, Body: '' }))))
  }

  const rows = await listVersions(s3.client, 'm', 'skin/')
  t.same(rows.filter((r) => r.problem === undefined && r.bytes !== undefined).map((r) => r.version), ['v2', 'v1'], 'newest first; other prefixes excluded')
  t.match(rows.find((r) => r.version === 'v0'), { bytes: undefined, date: Date }, 'a manifest without its model: dated by the manifest')
  t.match(rows.find((r) => r.version === 'v1'), { folder: 'skin/v1', modelKey: 'skin/v1/model.onnx', bytes: 256 * 1024, labels: 8, date: Date })
  t.match(rows.find((r) => r.problem !== undefined), { folder: 'skin/broken', version: '?', problem: /not JSON/ })
  t.equal((await listVersions(s3.client, 'm', '')).length, 5, 'the whole bucket')
  t.same(await listVersions(s3.client, 'm', 'nothing-here'), [])
})

t.test('push: an S3 error while checking for the version is not mistaken for "absent"', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const { faultProxy } = await import('../helpers/fault-proxy.js')
  const { testClient } = await import('../helpers/s3.js')
  const proxy = await faultProxy(t, s3.endpoint)
  proxy.inject({ method: 'HEAD', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  const client = testClient(proxy.endpoint)
  t.teardown(() => client.destroy())
  const modelPath = join(await scratchDir(t), 'model.onnx')
  await writeFile(modelPath, 'x')
  t.match(await pushModel({ client, bucket: 'm', prefix: 'p', modelPath, manifest: TINY_MANIFEST, version: 'v1' }).catch((e: unknown) => e), { $metadata: { httpStatusCode: 403 } })
  t.equal(proxy.requests.filter((r) => r.method === 'PUT' || r.method === 'POST').length, 0, 'nothing was uploaded')
})

t.test('push: side files (TF.js shards, facial_results.json) go beside the model, unchanged and pinned', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('m')
  const tmp = await scratchDir(t)
  const modelPath = join(tmp, 'model.json')
  await writeFile(modelPath, '{"modelTopology":{},"weightsManifest":[]}')
  await writeFile(join(tmp, 'group1-shard1of1.bin'), randomBytes(1000))
  await writeFile(join(tmp, 'facial_results.json'), '{"class_names":["a"]}')
  const result = await pushModel({
    client: s3.client, bucket: 'm', prefix: 'web', modelPath, version: 'v1',
    manifest: { ...TINY_MANIFEST, format: 'tfjs', file: 'model.json', labels: ['a'] }, sideFiles: [join(tmp, 'group1-shard1of1.bin'), join(tmp, 'facial_results.json')]
  })
  t.match(result, { uploaded: true, bytes: 1000 + 21 + 41 })
  const manifest = JSON.parse(await (await s3.client.send(new GetObjectCommand({ Bucket: 'm', Key: result.manifestKey }))).Body!.transformToString())
  t.same(Object.keys(manifest.sha256).sort(), ['facial_results.json', 'group1-shard1of1.bin', 'model.json'])
  const shard = await s3.client.send(new GetObjectCommand({ Bucket: 'm', Key: 'web/v1/group1-shard1of1.bin' }))
  t.equal(shard.Metadata?.sha256, manifest.sha256['group1-shard1of1.bin'])
  await t.rejects(pushModel({ client: s3.client, bucket: 'm', prefix: 'web', modelPath, version: 'v2', manifest: { ...TINY_MANIFEST, file: 'model.json' }, sideFiles: [modelPath] }),
    { name: 'PublishInputError', message: /model\.json cannot be published beside model\.json/ })
})
