import { rm, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { openBundle, hashFile } from '../../src/models/bundle.js'
import { localStore } from '../../src/models/store.js'
import { writeTinyBundle } from '../helpers/model.js'

t.test('a bundle folder or its model file', async (t) => {
  const b = await writeTinyBundle(t.testdir())
  const fromDir = await openBundle(b.dir)
  t.equal(fromDir.modelFile, b.modelPath)
  t.equal(fromDir.spec?.name, 'tiny-test')
  const fromFile = await openBundle(b.modelPath)
  t.equal(fromFile.dir, b.dir)
  t.equal(fromFile.spec?.version, 'test-1')
  t.equal(await hashFile(b.modelPath), b.sha256)
  t.match(await localStore(b.dir, join(b.dir, 'cache')).resolve(), { source: 'local', modelFile: b.modelPath })
})

t.test('a model file whose bytes differ from the manifest is refused', async (t) => {
  const b = await writeTinyBundle(t.testdir(), { manifest: { sha256: { 'model.onnx': '0'.repeat(64) } } })
  await t.rejects(openBundle(b.dir), { name: 'ManifestError', message: /sha256 .* does not match/ })
})

t.test('without a manifest', async (t) => {
  const b = await writeTinyBundle(t.testdir())
  await rm(b.manifestPath)
  t.match(await openBundle(b.dir), { modelFile: b.modelPath, spec: undefined }, 'the folder\'s only .onnx file')
  t.match(await openBundle(b.modelPath), { modelFile: b.modelPath, spec: undefined }, 'the file itself')
  await writeFile(join(b.dir, 'other.onnx'), 'x')
  await t.rejects(openBundle(b.dir), /2 model files .*\(model\.onnx, other\.onnx\)/)
})

t.test('paths that do not lead to a model', async (t) => {
  const dir = t.testdir({ 'notes.txt': 'x' })
  await t.rejects(openBundle(join(dir, 'missing')), /does not exist/)
  await t.rejects(openBundle(dir), /no model files/)
  const b = await writeTinyBundle(t.testdir())
  await writeFile(join(b.dir, 'copy.onnx'), 'x')
  await t.rejects(openBundle(join(b.dir, 'copy.onnx')), /is not the model named in/)
  await rm(b.modelPath)
  await t.rejects(openBundle(b.dir), /model file .* does not exist/)
  await writeFile(b.manifestPath, '{')
  await t.rejects(openBundle(b.dir), /not JSON/)
  const unreadable = t.testdir()
  await mkdir(join(unreadable, 'manifest.json'))
  await t.rejects(openBundle(unreadable), /EISDIR/)
})

t.test('a path through a file is reported with the system error', async (t) => {
  const dir = t.testdir({ 'file.txt': 'x' })
  await t.rejects(openBundle(join(dir, 'file.txt', 'model.onnx')), { name: 'ManifestError', message: /ENOTDIR/ })
})
