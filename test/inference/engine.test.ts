import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startEngine } from '../../src/inference/engine.js'
import { hashFile, openBundle } from '../../src/models/bundle.js'
import { localStore } from '../../src/models/store.js'
import { writeTinyBundle } from '../helpers/model.js'

const options = { workers: 2, intraOpThreads: 1, queueSize: 8, inferenceTimeoutMs: 30_000 }

t.test('a manifest-less model is described by its own shapes and warms up', async (t) => {
  const b = await writeTinyBundle(t.testdir(), { layout: 'NHWC' })
  await rm(b.manifestPath)
  const engine = await startEngine({ ...(await openBundle(b.dir)), source: 'local' }, options)
  t.teardown(async () => await engine.pool.close())
  t.match(engine.model.spec, { name: 'model', version: 'unversioned', input: { layout: 'NHWC', width: 32, height: 32 }, output: { activation: 'auto' } })
  t.equal(engine.model.spec.labels.length, 8)
  t.equal(engine.pool.stats().completed >= 3, true, 'one describe and a warm-up inference per worker')
})

t.test('a manifest-less local model is named by its content; a manifest\'s version wins', async (t) => {
  const dir = t.testdir()
  const b = await writeTinyBundle(join(dir, 'model'), { version: 'from-manifest' })
  const sha = await hashFile(b.modelPath)
  const withManifest = await startEngine(await localStore(b.dir, join(dir, 'cache')).resolve(), options)
  t.teardown(async () => await withManifest.pool.close())
  t.equal(withManifest.model.spec.version, 'from-manifest')
  await rm(b.manifestPath)
  const bare = await startEngine(await localStore(b.dir, join(dir, 'cache')).resolve(), options)
  t.teardown(async () => await bare.pool.close())
  t.equal(bare.model.spec.version, `sha256-${sha.slice(0, 12)}`)
})

t.test('the source error of a cached bundle is carried to the model', async (t) => {
  const b = await writeTinyBundle(t.testdir())
  let tracked = false
  const engine = await startEngine({ ...(await openBundle(b.dir)), source: 'cache', sourceError: 'S3 unreachable' }, options, () => { tracked = true })
  t.teardown(async () => await engine.pool.close())
  t.match(engine.model, { source: 'cache', sourceError: 'S3 unreachable' })
  t.ok(tracked, 'the pool was handed out before warm-up')
})

t.test('a manifest naming an input the model lacks fails the warm-up and closes the pool', async (t) => {
  const b = await writeTinyBundle(t.testdir(), { manifest: { input: { name: 'pixels', layout: 'NCHW', width: 32, height: 32, mean: [0, 0, 0], std: [1, 1, 1] } } })
  await t.rejects(startEngine({ ...(await openBundle(b.dir)), source: 'local' }, options), { name: 'ManifestError', message: 'manifest input "pixels" is not an input of model.onnx (it has: input)' })
})
