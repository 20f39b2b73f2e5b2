// Local Keras files: converted into MODEL_DIR (never beside the file), reused on a warm boot,
// converted again after a converter upgrade, checked against the manifest's format; and the
// converted model served by the engine gives Keras's own outputs.
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { CONVERTER_VERSION } from '../../src/convert/convert.js'
import { startEngine } from '../../src/inference/engine.js'
import { readMarker, rewriteMarker } from '../../src/models/cache.js'
import { convertOffThread, looksLikeOnnx } from '../../src/models/conversion.js'
import { convertSource, convertedFileName, needsConversion } from '../../src/models/converted.js'
import { CONVERTED_SUBDIR, localStore } from '../../src/models/store.js'
import { FACIAL_RESULTS, MINI_ENSEMBLE_H5, TEAM_LABELS, readExpected } from '../helpers/keras.js'
import { writeTinyBundle } from '../helpers/model.js'

const head = (...bytes: number[]) => Buffer.from(bytes)

t.test('which files go to the converter, from their first bytes and the manifest\'s format', async (t) => {
  const onnx = head(0x08, 0x07, 0x12)
  t.ok(looksLikeOnnx(onnx))
  t.notOk(looksLikeOnnx(head(0x08, 0x01, 0x12)), 'a SavedModel .pb')
  t.notOk(looksLikeOnnx(head(0x08)))
  t.equal(needsConversion(onnx, undefined, 'm'), false)
  t.equal(needsConversion(onnx, 'onnx', 'm'), false)
  t.throws(() => needsConversion(onnx, 'keras-h5', 'm.h5'), { name: 'ManifestError', message: 'manifest.json says format "keras-h5" but m.h5 is an ONNX model' })
  t.equal(needsConversion(head(0x89, 0x48, 0x44, 0x46), undefined, 'm'), true)
  t.equal(needsConversion(Buffer.from('junk'), undefined, 'm'), true, 'the converter names what it is')
  t.equal(needsConversion(Buffer.from('junk'), 'onnx', 'm'), false, 'a manifest saying onnx is trusted: ONNX Runtime checks')
  t.throws(() => needsConversion(head(0x89, 0x48, 0x44, 0x46), 'onnx', 'm'), { message: 'manifest.json says format "onnx" but m looks like a keras-h5 model' })
  t.throws(() => needsConversion(head(0x50, 0x4b, 0x03, 0x04), 'onnx', 'm'), /looks like a keras model/)
  t.throws(() => needsConversion(Buffer.from('{"a"'), 'onnx', 'm'), /looks like a tfjs model/)
})

t.test('a converter failure that is not a ConvertError is still one line naming the file', async (t) => {
  await t.rejects(convertOffThread({ path: join(t.testdir(), 'missing.h5'), workDir: t.testdir(), what: 'missing.h5', out: join(t.testdir(), 'out.onnx') }),
    { name: 'ConvertError', message: /^missing\.h5: the converter failed \(Error: ENOENT/ })
})

t.test('a local Keras file: converted into MODEL_DIR once, served with Keras\'s outputs; an upgrade converts again', async (t) => {
  const root = t.testdir({ user: {}, cache: {}, tmp: {} })
  const user = join(root, 'user')
  const modelDir = join(root, 'cache')
  const modelPath = join(user, 'best_facial_model.h5')
  await copyFile(MINI_ENSEMBLE_H5, modelPath)
  await writeFile(join(user, 'facial_results.json'), FACIAL_RESULTS)
  const converting: string[] = []
  const resolve = async () => await localStore(user, modelDir).resolve(undefined, (f) => { converting.push(f) })

  const first = await resolve()
  t.match(first, { source: 'local', format: 'keras-h5', sourceFile: modelPath, labels: { labels: TEAM_LABELS }, conversion: { format: 'keras-h5', parameters: Number } })
  t.equal(first.modelFile, join(modelDir, CONVERTED_SUBDIR, first.modelFile.split('/').at(-2)!, convertedFileName(CONVERTER_VERSION)))
  t.same(await readdir(user), ['best_facial_model.h5', 'facial_results.json'], 'nothing beside the user\'s file')
  const second = await resolve()
  t.equal(second.modelFile, first.modelFile)
  t.equal(second.conversion, undefined)
  t.same(converting, ['keras-h5'], 'the warm boot reuses the conversion')

  const engine = await startEngine(second, { workers: 1, intraOpThreads: 1, queueSize: 4, inferenceTimeoutMs: 30_000 })
  t.teardown(() => engine.pool.close())
  t.match(engine.model.spec, { name: 'best_facial_model', format: 'keras-h5', labels: TEAM_LABELS, input: { name: 'input_layer', layout: 'NHWC', width: 32, height: 32 } })
  const expected = await readExpected('mini_ensemble')
  const input = expected.inputs[0]!
  const out = await engine.pool.infer(new Float32Array(input.data), input.shape)
  const want = expected.outputs[0]!.data
  const diff = Math.max(...Array.from(want, (v, i) => Math.abs(v - out.data[i]!)))
  t.ok(diff < 1e-4, `served outputs match Keras (max |Δ| ${diff.toExponential(1)})`)

  const dir = join(first.modelFile, '..')
  const marker = (await readMarker(dir))!
  await rewriteMarker(dir, { ...marker, converted: { ...marker.converted!, converter: 'shine-keras-onnx/0' } }, join(root, 'tmp'))
  const third = await resolve()
  t.same(converting, ['keras-h5', 'keras-h5'], 'another converter\'s output is converted again')
  t.match(await readMarker(join(third.modelFile, '..')), { converted: { converter: CONVERTER_VERSION } })
  t.same(await readdir(join(modelDir, CONVERTED_SUBDIR)), [first.modelFile.split('/').at(-2)], 'one folder, no staging left')

  await writeFile(join(user, 'manifest.json'), JSON.stringify({
    name: 'hare', version: 'v1', format: 'keras', file: 'best_facial_model.h5',
    input: { name: 'input_layer', layout: 'NHWC', width: 32, height: 32, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'dense_2', activation: 'none' }, labels: TEAM_LABELS
  }))
  await t.rejects(resolve(), { name: 'ManifestError', message: /manifest\.json says format "keras" but .*best_facial_model\.h5 is a keras-h5 model/ }, 'the cached conversion is checked too')
})

t.test('an ONNX file whose manifest says keras-h5 is refused before anything runs', async (t) => {
  const b = await writeTinyBundle(t.testdir(), { manifest: { format: 'keras-h5' } })
  await t.rejects(localStore(b.dir, join(b.dir, 'cache')).resolve(), { message: /says format "keras-h5" but .*model\.onnx is an ONNX model/ })
  t.same((await readFile(b.modelPath)).subarray(0, 1), Buffer.from([0x08]))
})

t.test('an ONNX source is served as it is: no conversion, nothing staged', async (t) => {
  const dir = t.testdir({ staging: {} })
  const bundle = await writeTinyBundle(join(dir, 'bundle'))
  let converting = 0
  const prepared = await convertSource({
    source: bundle.modelPath, sourceSha256: 'x', what: bundle.modelPath, staging: join(dir, 'staging'), onConverting: () => { converting++ }
  })
  t.same(prepared, { modelFile: bundle.modelPath, format: 'onnx' })
  t.equal(converting, 0, 'no "converting" phase is reported')
  t.same(await readdir(join(dir, 'staging')), [], 'nothing written to staging')
})
