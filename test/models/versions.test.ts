import { readFile, utimes, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import t from 'tap'
import { s3Store } from '../../src/models/s3-store.js'
import { localStore } from '../../src/models/store.js'
import { localIdentity, watchLocal, watchS3 } from '../../src/models/versions.js'
import { writeTinyBundle } from '../helpers/model.js'
import { TEST_CREDENTIALS, fakeS3, publish, scratchDir } from '../helpers/s3.js'

const TUNING = { cacheKeep: 2, connectTimeoutMs: 2000, stallTimeoutMs: 5000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 10 }, downloadStreams: 1, partSizeBytes: 8 * 1024 * 1024 }

t.test('a local bundle: the identity follows every file, not dot files; the version is the manifest\'s', async (t) => {
  const dir = t.testdir()
  const bundle = await writeTinyBundle(join(dir, 'model'), { version: 'v1' })
  const source = watchLocal(localStore(bundle.dir, join(dir, 'cache')), bundle.dir)
  const first = await source.probe()
  t.equal(first.version, 'v1')
  t.same(await source.probe(), first, 'stable while nothing changes')
  await writeFile(join(bundle.dir, '.manifest.json.tmp'), 'half written')
  t.equal((await source.probe()).identity, first.identity, 'a staging dot file is not a change')
  const later = new Date(Date.now() + 5000)
  await utimes(bundle.modelPath, later, later)
  t.not((await source.probe()).identity, first.identity, 'a rewritten model file is a change')
  t.equal(await localIdentity(bundle.modelPath), await localIdentity(bundle.dir), 'a model file path watches its folder')
  const resolved = await source.resolve()
  t.equal(resolved.identity, (await source.probe()).identity)
  t.equal(resolved.bundle.spec?.version, 'v1')

  // Without a readable version the identity stands in for it.
  const raw = await readFile(bundle.manifestPath, 'utf8')
  await writeFile(bundle.manifestPath, '{not json')
  t.equal((await source.probe()).version, (await source.probe()).identity)
  await writeFile(bundle.manifestPath, JSON.stringify({ ...JSON.parse(raw), version: 7 }))
  t.equal((await source.probe()).version, (await source.probe()).identity)
  const bare = await writeTinyBundle(join(dir, 'bare'))
  await writeFile(bare.manifestPath, '')
  const { rm } = await import('node:fs/promises')
  await rm(bare.manifestPath)
  t.equal((await watchLocal(localStore(bare.dir, dir), bare.modelPath).probe()).version, await localIdentity(bare.dir), 'no manifest')

  const missing = join(dir, 'nowhere')
  await t.rejects(watchLocal(localStore(missing, dir), missing).resolve(), { message: `model path ${missing} does not exist` }, 'the store names a missing path')
})

t.test('S3: the probe is HEADs, the version the one push recorded; resolve names the version folder it served', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const pushed = await publish(s3, await scratchDir(t), { bucket: 'models', prefix: 'skin', version: '2026-12-01.1' })
  const store = s3Store({ s3: { bucket: 'models', modelKey: pushed.modelKey, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true }, modelDir: await scratchDir(t), tuning: TUNING, credentials: TEST_CREDENTIALS })
  t.teardown(() => store.client.destroy())
  const source = watchS3(store)
  const found = await source.probe()
  t.equal(found.version, '2026-12-01.1')
  const resolved = await source.resolve()
  t.equal(resolved.identity, found.identity)
  t.equal(basename(resolved.bundle.dir), found.identity)

  await s3.put('models', 'plain/model.onnx', Buffer.from([8, 7, 1, 2]))
  const plain = s3Store({ s3: { bucket: 'models', modelKey: 'plain/model.onnx', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true }, modelDir: await scratchDir(t), tuning: TUNING, credentials: TEST_CREDENTIALS })
  t.teardown(() => plain.client.destroy())
  const bare = await watchS3(plain).probe()
  t.equal(bare.version, bare.identity, 'an object put without `shine-models push` is named by its identity')
})
