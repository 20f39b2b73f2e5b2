import t from 'tap'
import { checkSpecAgainstModel, parseManifest, specFromModelMetadata } from '../../src/models/manifest.js'

const validManifest = {
  name: 'hare_run_v6_facial',
  version: '2026-11-01.1',
  format: 'onnx',
  file: 'model.onnx',
  sha256: { 'model.onnx': 'a'.repeat(64) },
  input: { name: 'input', layout: 'NCHW', width: 224, height: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  output: { name: 'probs', activation: 'none' },
  labels: ['acne', 'rosacea', 'eczema', 'hyperpigmentation', 'wrinkles', 'dryness', 'oiliness', 'healthy']
}

const withChange = (change: (m: Record<string, unknown>) => void) => {
  const m = structuredClone(validManifest) as unknown as Record<string, unknown>
  change(m)
  return JSON.stringify(m)
}

t.test('DESIGN.md\'s example parses into a spec', async (t) => {
  const spec = parseManifest(JSON.stringify({ ...validManifest, extra: 'ignored' }))
  t.equal(spec.name, 'hare_run_v6_facial')
  t.equal(spec.input.layout, 'NCHW')
  t.same(spec.input.mean, [0.485, 0.456, 0.406])
  t.equal(spec.output.activation, 'none')
  t.equal(spec.labels.length, 8)
  t.equal(spec.demo, false)
  t.same(spec.warnings, [])
})

t.test('demo and unpinned bundles carry warnings', async (t) => {
  const demo = parseManifest(withChange((m) => { m.demo = true }))
  t.equal(demo.demo, true)
  t.match(demo.warnings.join(), /demo model/)
  const unpinned = parseManifest(withChange((m) => { delete m.sha256 }))
  t.same(unpinned.sha256, {})
  t.match(unpinned.warnings.join(), /no sha256/)
})

t.test('invalid manifests are refused with the path of the problem', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{not json', /not JSON/],
    ['[1]', /manifest.json is invalid: \/ /],
    [withChange((m) => { m.format = 'tflite' }), /\/format/],
    [withChange((m) => { m.file = '../../etc/passwd' }), /\/file/],
    [withChange((m) => { m.file = 'sub/model.onnx' }), /\/file/],
    [withChange((m) => { m.file = '..' }), /\/file/],
    [withChange((m) => { (m.input as Record<string, unknown>).layout = 'CHW' }), /\/input\/layout/],
    [withChange((m) => { (m.input as Record<string, unknown>).std = [1, 0, 1] }), /\/input\/std\/1/],
    [withChange((m) => { (m.input as Record<string, unknown>).mean = [1, 0] }), /\/input\/mean/],
    [withChange((m) => { (m.output as Record<string, unknown>).activation = 'relu' }), /\/output\/activation/],
    [withChange((m) => { m.labels = [] }), /\/labels/],
    [withChange((m) => { m.labels = ['a', 'a'] }), /labels must be unique/],
    [withChange((m) => { m.sha256 = { 'model.onnx': 'xyz' } }), /\/sha256/],
    [withChange((m) => { m.sha256 = { 'other.bin': 'b'.repeat(64) } }), /no entry for "model.onnx"/]
  ]
  for (const [text, message] of cases) t.throws(() => parseManifest(text), { name: 'ManifestError', message }, String(message))
})

t.test('a model file without a manifest: shapes tell layout, size and labels', async (t) => {
  const nchw = specFromModelMetadata('skin.onnx', [{ name: 'x', dims: ['N', 3, 64, 48] }], [{ name: 'y', dims: [-1, 5] }])
  t.match(nchw, { name: 'skin', version: 'unversioned', input: { name: 'x', layout: 'NCHW', height: 64, width: 48, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'y', activation: 'auto' } })
  t.same(nchw.labels, ['class_0', 'class_1', 'class_2', 'class_3', 'class_4'])
  t.match(nchw.warnings.join(), /no manifest/)
  const nhwc = specFromModelMetadata('m.onnx', [{ name: 'x', dims: [1, 32, 40, 3] }], [{ name: 'y', dims: [1, 2] }])
  t.match(nhwc.input, { layout: 'NHWC', height: 32, width: 40 })
  t.throws(() => specFromModelMetadata('m.onnx', [], []), /no inputs/)
  t.throws(() => specFromModelMetadata('m.onnx', [{ name: 'x', dims: [1, 224, 224] }], [{ name: 'y', dims: [1, 2] }]), /needs \[N,3,H,W\]/)
  t.throws(() => specFromModelMetadata('m.onnx', [{ name: 'x', dims: [1, 3, 'H', 'W'] }], [{ name: 'y', dims: [1, 2] }]), /fixed sizes/)
  t.throws(() => specFromModelMetadata('m.onnx', [{ name: 'x', dims: [1, 3, 8, 8] }], [{ name: 'y', dims: [1, 'C'] }]), /fixed sizes/)
})

t.test('a manifest is checked against the model it describes', async (t) => {
  const spec = parseManifest(JSON.stringify(validManifest))
  const inputs = [{ name: 'input', dims: ['N', 3, 224, 224] }]
  const outputs = [{ name: 'probs', dims: ['N', 8] }]
  t.doesNotThrow(() => checkSpecAgainstModel(spec, inputs, outputs))
  t.doesNotThrow(() => checkSpecAgainstModel(spec, [{ name: 'input', dims: ['N', 3, 'H', 'W'] }], [{ name: 'probs', dims: ['N', 'C'] }]), 'symbolic sizes fit')
  t.throws(() => checkSpecAgainstModel(spec, [{ name: 'x', dims: [1, 3, 224, 224] }], outputs), /manifest input "input" is not an input of model.onnx \(it has: x\)/)
  t.throws(() => checkSpecAgainstModel(spec, inputs, [{ name: 'y', dims: [1, 8] }]), /manifest output "probs" is not an output/)
  t.throws(() => checkSpecAgainstModel(spec, [{ name: 'input', dims: [1, 224, 224, 3] }], outputs), /NCHW 224×224 does not fit model.onnx's input shape \[1, 224, 224, 3\]/)
  t.throws(() => checkSpecAgainstModel(spec, [{ name: 'input', dims: [1, 3, 224] }], outputs), /does not fit/)
  t.throws(() => checkSpecAgainstModel(spec, inputs, [{ name: 'probs', dims: [1, 5] }]), /8 labels but model.onnx's output shape is \[1, 5\]/)
  const nhwc = parseManifest(withChange((m) => { (m.input as Record<string, unknown>).layout = 'NHWC' }))
  t.doesNotThrow(() => checkSpecAgainstModel(nhwc, [{ name: 'input', dims: [1, 224, 224, 3] }], outputs))
})

t.test('Keras formats and BGR channels in a manifest', async (t) => {
  const keras = parseManifest(withChange((m) => { m.format = 'keras-h5'; m.file = 'best_facial_model.h5'; m.sha256 = { 'best_facial_model.h5': 'a'.repeat(64) } }))
  t.match(keras, { format: 'keras-h5', file: 'best_facial_model.h5', input: { channels: 'RGB' } }, 'RGB by default')
  const caffe = parseManifest(withChange((m) => { (m.input as Record<string, unknown>).channels = 'BGR' }))
  t.equal(caffe.input.channels, 'BGR')
  t.throws(() => parseManifest(withChange((m) => { m.format = 'savedmodel' })), /\/format/)
  t.throws(() => parseManifest(withChange((m) => { (m.input as Record<string, unknown>).channels = 'RGBA' })), /\/input\/channels/)
})

t.test('without a manifest: labels from a side JSON, the source format, the file name without its extension', async (t) => {
  const team = ['healthy', 'acne', 'bags', 'redness', 'rosacea', 'eczema', 'hyperpigmentation', 'other']
  const spec = specFromModelMetadata('best_facial_model.h5', [{ name: 'input_1', dims: ['N', 224, 224, 3] }], [{ name: 'dense_2', dims: ['N', 8] }],
    { format: 'keras-h5', labels: { file: 'facial_results.json', labels: team } })
  t.match(spec, { name: 'best_facial_model', format: 'keras-h5', labels: team, input: { layout: 'NHWC', width: 224, channels: 'RGB', mean: [0, 0, 0], std: [1, 1, 1] }, output: { activation: 'auto' } })
  t.match(spec.warnings, [/labels from facial_results\.json/])
  t.throws(() => specFromModelMetadata('m.h5', [{ name: 'x', dims: ['N', 8, 8, 3] }], [{ name: 'y', dims: ['N', 6] }], { labels: { file: 'labels.json', labels: team } }),
    { name: 'ManifestError', message: "labels.json names 8 classes but m.h5's output shape is [N, 6]" })
})
