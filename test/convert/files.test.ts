// The file readers on small files made here: HDF5 (legacy weights, .keras weights, superblocks),
// .keras zips, TF.js model.json + shards (incl. quantized weights), and format detection.
import { mkdirSync, openSync, closeSync, ftruncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import h5wasm from 'h5wasm/node'
import t from 'tap'
import yazl from 'yazl'
import { convertKerasFile, type KerasFormat } from '../../src/convert/convert.js'
import { detectFormat, MAX_JSON_BYTES } from '../../src/convert/detect.js'
import { ConvertError } from '../../src/convert/errors.js'
import { HDF5_SIGNATURE, openHdf5, superblockEof, type H5Group } from '../../src/convert/hdf5.js'
import { legacyWeights } from '../../src/convert/keras-weights.js'
import { readTfjs, shardPaths } from '../../src/convert/tfjs.js'
import { checkWeightSize, toFloat32, weightKind } from '../../src/convert/weights.js'
import { runModel } from '../helpers/keras-graph.js'

type H5 = InstanceType<typeof h5wasm.File>

async function h5 (path: string, build: (f: H5) => void): Promise<string> {
  await h5wasm.ready
  const f = new h5wasm.File(path, 'w')
  try {
    build(f)
  } finally {
    f.close()
  }
  return path
}

async function refusal (f: () => Promise<unknown>): Promise<string> {
  try {
    await f()
  } catch (err) {
    if (!(err instanceof ConvertError)) throw err
    return err.message
  }
  throw new Error('no ConvertError')
}

async function zipOf (entries: Record<string, Buffer | string>, dest: string): Promise<string> {
  const zip = new yazl.ZipFile()
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(Buffer.from(data), name)
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream) chunks.push(c as Buffer)
  writeFileSync(dest, Buffer.concat(chunks))
  return dest
}

// One Dense(2 → 1) layer named d, kernel [3, 4], bias 0.5: y = 3·x₀ + 4·x₁ + 0.5.
const DENSE_MODEL = {
  class_name: 'Sequential',
  config: { name: 's', layers: [{ class_name: 'InputLayer', config: { name: 'x', batch_shape: [null, 2] } }, { class_name: 'Dense', config: { name: 'd', units: 1 } }] }
}
const dense = async (onnx: Uint8Array) => (await runModel(onnx, [{ shape: [1, 2], data: [1, 2] }]))[0]?.data

t.test('legacy .h5: weights found under the file root, float64 narrowed, no keras_version', async (t) => {
  const dir = t.testdir()
  const path = await h5(join(dir, 'm.h5'), (f) => {
    f.create_attribute('model_config', JSON.stringify(DENSE_MODEL))
    f.create_dataset({ name: 'not_a_layer', data: Float32Array.of(1) })
    const g = f.create_group('d')
    g.create_attribute('weight_names', ['kernel:0', 'bias:0'])
    g.create_dataset({ name: 'kernel:0', data: Float64Array.of(3, 4), shape: [2, 1] })
    g.create_dataset({ name: 'bias:0', data: Float32Array.of(0.5) })
    const x = f.create_group('x')
    x.create_attribute('weight_names', 'unused:0')
    x.create_dataset({ name: 'unused:0', data: Float32Array.of(0) })
    f.create_group('empty')
  })
  t.equal(await detectFormat(path), 'keras-h5')
  const { parts, summary } = await convertKerasFile(path, 'keras-h5', dir)
  t.same([summary.kerasVersion, summary.parameters, summary.modelName], ['unknown', 3, 's'])
  t.same(await dense(Buffer.concat(parts)), [11.5])
})

t.test('legacy .h5 weights that cannot be read are named', async (t) => {
  const dir = t.testdir()
  const withWeights = async (name: string, build: (g: H5Group) => void) => await h5(join(dir, name), (f) => {
    f.create_attribute('model_config', JSON.stringify(DENSE_MODEL))
    const g = f.create_group('model_weights').create_group('d')
    build(g)
  })
  const missing = await withWeights('missing.h5', (g) => { g.create_attribute('weight_names', ['d/kernel:0']) })
  t.match(await refusal(async () => await convertKerasFile(missing, 'keras-h5', dir, 'missing.h5')), /^missing\.h5: weight "d\/d\/kernel:0" is listed but missing$/)
  const ints = await withWeights('ints.h5', (g) => {
    g.create_attribute('weight_names', ['kernel:0', 'bias:0'])
    g.create_dataset({ name: 'kernel:0', data: Int32Array.of(3, 4), shape: [2, 1] })
    g.create_dataset({ name: 'bias:0', data: Float32Array.of(0.5) })
  })
  t.match(await refusal(async () => await convertKerasFile(ints, 'keras-h5', dir, 'ints.h5')), /ints\.h5: weight "d\/kernel:0": weights of type Int32Array are not supported \(float32 or float64 only\)/)
  const badJson = await h5(join(dir, 'json.h5'), (f) => { f.create_attribute('model_config', '{"class_name": ') })
  t.match(await refusal(async () => await convertKerasFile(badJson, 'keras-h5', dir, 'json.h5')), /^json\.h5's model_config is not valid JSON \(/)
  const noConfig = await h5(join(dir, 'none.h5'), (f) => { f.create_group('g') })
  t.match(await refusal(async () => await convertKerasFile(noConfig, 'keras-h5', dir, 'none.h5')), /^none\.h5 has no model_config: it holds only weights$/)
})

t.test('a dataset that fails to read is reported as damaged, naming the weight', async (t) => {
  const dataset = Object.create(h5wasm.Dataset.prototype, { shape: { value: [2] }, value: { get: () => { throw new Error('inflate failed') } } }) as object
  const group = Object.create(h5wasm.Group.prototype, {
    attrs: { value: { weight_names: { value: ['d/kernel'] } } },
    get: { value: () => dataset }
  }) as H5Group
  const root = Object.create(h5wasm.Group.prototype, { keys: { value: () => ['d'] }, get: { value: () => group } }) as H5Group
  const weights = legacyWeights(root, 'm.h5')
  const kernel = weights.lookup(['d'])?.byKind?.get('kernel')
  t.same(kernel?.dims, [2])
  const nullShape = Object.create(h5wasm.Dataset.prototype, { shape: { value: null }, value: { value: Float32Array.of(1) } }) as object
  const scalar = legacyWeights(Object.create(h5wasm.Group.prototype, {
    keys: { value: () => ['s'] },
    get: { value: () => Object.create(h5wasm.Group.prototype, { attrs: { value: { weight_names: { value: ['s/gamma'] } } }, get: { value: () => nullShape } }) }
  }) as H5Group, 'm.h5')
  t.same(scalar.lookup(['s'])?.byKind?.get('gamma')?.dims, [], 'a dataset without a dataspace has no dims')
  t.throws(() => kernel?.read(), { message: 'm.h5: weight "d/d/kernel" could not be read (inflate failed): the file is damaged' })
  t.equal(weights.lookup(['other']), undefined)
})

async function kerasWeights (path: string, build: (layers: H5Group) => void): Promise<Buffer> {
  await h5(path, (f) => build(f.create_group('layers')))
  const { readFileSync } = await import('node:fs')
  return readFileSync(path)
}

t.test('.keras: weights by variable order, metadata optional, version defaults to 3', async (t) => {
  const dir = t.testdir()
  const weights = await kerasWeights(join(dir, 'w.h5'), (layers) => {
    layers.create_dataset({ name: 'stray', data: Float32Array.of(0) })
    const vars = layers.create_group('dense').create_group('vars')
    vars.create_attribute('name', 'd')
    vars.create_dataset({ name: '1', data: Float32Array.of(0.5) })
    vars.create_dataset({ name: '0', data: Float32Array.of(3, 4), shape: [2, 1] })
    vars.create_group('not_a_variable')
    layers.create_group('x')
  })
  const plain = await zipOf({ 'config.json': JSON.stringify(DENSE_MODEL), 'model.weights.h5': weights }, join(dir, 'plain.keras'))
  const { parts, summary } = await convertKerasFile(plain, 'keras', dir)
  t.same([summary.kerasVersion, summary.parameters], ['3', 3])
  t.same(await dense(Buffer.concat(parts)), [11.5])
  const odd = await zipOf({ 'config.json': JSON.stringify(DENSE_MODEL), 'metadata.json': '{"keras_version": 3}', 'model.weights.h5': weights }, join(dir, 'odd.keras'))
  t.equal((await convertKerasFile(odd, 'keras', dir)).summary.kerasVersion, '3', 'a keras_version that is not a string')
  const bigMeta = await zipOf({ 'config.json': JSON.stringify(DENSE_MODEL), 'metadata.json': Buffer.alloc(64 * 2 ** 20 + 1, 0x20), 'model.weights.h5': weights }, join(dir, 'big-meta.keras'))
  t.equal((await convertKerasFile(bigMeta, 'keras', dir)).summary.kerasVersion, '3', 'a metadata.json over 64 MiB is not read')
})

t.test('.keras files that cannot be read say why, and leave no weights behind', async (t) => {
  const dir = t.testdir()
  const work = join(dir, 'work')
  mkdirSync(work)
  const weights = await kerasWeights(join(dir, 'w.h5'), (layers) => { layers.create_group('d').create_group('vars').create_group('0') })
  const notDataset = await zipOf({ 'config.json': JSON.stringify(DENSE_MODEL), 'model.weights.h5': weights }, join(dir, 'a.keras'))
  t.match(await refusal(async () => await convertKerasFile(notDataset, 'keras', work, 'a.keras')), /^a\.keras: d variable 0 is not a dataset$/)
  const badConfig = await zipOf({ 'config.json': '{', 'model.weights.h5': weights }, join(dir, 'b.keras'))
  t.match(await refusal(async () => await convertKerasFile(badConfig, 'keras', work, 'b.keras')), /^b\.keras's config\.json is not valid JSON/)
  const badMeta = await zipOf({ 'config.json': JSON.stringify(DENSE_MODEL), 'metadata.json': 'nope', 'model.weights.h5': weights }, join(dir, 'c.keras'))
  t.match(await refusal(async () => await convertKerasFile(badMeta, 'keras', work, 'c.keras')), /^c\.keras's metadata\.json is not valid JSON/)
  const huge = await zipOf({ 'config.json': Buffer.alloc(64 * 2 ** 20 + 1, 0x20), 'model.weights.h5': weights }, join(dir, 'huge.keras'))
  t.match(await refusal(async () => await convertKerasFile(huge, 'keras', work, 'huge.keras')), /^huge\.keras: config\.json declares 67108865 bytes, over the 67108864-byte limit$/)
  const empty = await zipOf({}, join(dir, 'empty.keras'))
  t.match(await refusal(async () => await convertKerasFile(empty, 'keras', work, 'empty.keras')), /^empty\.keras is a zip but not a Keras \.keras file \(it needs config\.json and model\.weights\.h5; it has no files\)$/)
  writeFileSync(join(dir, 'junk.keras'), Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64, 7)]))
  t.equal(await detectFormat(join(dir, 'junk.keras')), 'keras')
  t.match(await refusal(async () => await convertKerasFile(join(dir, 'junk.keras'), 'keras', work, 'junk.keras')), /^junk\.keras is not a readable zip \(/)
  const { readdirSync } = await import('node:fs')
  t.same(readdirSync(work), [], 'no extracted weights are left behind')
})

t.test('superblockEof reads the end-of-file address of every superblock version', async (t) => {
  const head = (version: number, fill: (b: Buffer) => void) => {
    const b = Buffer.alloc(96)
    HDF5_SIGNATURE.copy(b)
    b[8] = version
    fill(b)
    return b
  }
  t.equal(superblockEof(head(0, (b) => { b[13] = 8; b.writeBigUInt64LE(1234n, 24 + 16) })), 1234n, 'v0, 8-byte offsets')
  t.equal(superblockEof(head(1, (b) => { b[13] = 4; b.writeUInt32LE(99, 28 + 8) })), 99n, 'v1, 4-byte offsets')
  t.equal(superblockEof(head(2, (b) => { b[9] = 8; b.writeBigUInt64LE(777n, 12 + 16) })), 777n, 'v2')
  t.equal(superblockEof(head(3, (b) => { b[9] = 4; b.writeUInt32LE(55, 12 + 8) })), 55n, 'v3')
  t.equal(superblockEof(head(0, (b) => { b[13] = 2 })), undefined, 'an offset size HDF5 never writes')
  t.equal(superblockEof(head(2, (b) => { b[9] = 8 }).subarray(0, 30)), undefined, 'a header too short to hold the address')
  t.equal(superblockEof(head(4, () => {})), undefined, 'an unknown version')
  t.equal(superblockEof(Buffer.from('not hdf5 at all')), undefined)
})

t.test('openHdf5 names files that are not HDF5 or that HDF5 cannot read', async (t) => {
  const dir = t.testdir()
  writeFileSync(join(dir, 'text.h5'), 'hello')
  t.match(await refusal(async () => await openHdf5(join(dir, 'text.h5'), 'text.h5')), /^text\.h5 is not an HDF5 file$/)
  const garbage = Buffer.alloc(256, 0xff)
  HDF5_SIGNATURE.copy(garbage)
  garbage[8] = 9
  writeFileSync(join(dir, 'garbage.h5'), garbage)
  t.match(await refusal(async () => await openHdf5(join(dir, 'garbage.h5'), 'garbage.h5')), /^garbage\.h5 could not be read as HDF5 \(/)
})

t.test('detectFormat: HDF5 that is not Keras, weights-only files, ONNX, JSON of every kind', async (t) => {
  const dir = t.testdir({ folder: {} })
  const p = (n: string) => join(dir, n)
  await h5(p('plain.h5'), (f) => { f.create_group('data') })
  await h5(p('layer-names.h5'), (f) => { f.create_attribute('layer_names', ['d']) })
  await h5(p('layers.h5'), (f) => { f.create_group('layers') })
  writeFileSync(p('model.onnx'), Buffer.from([0x08, 0x07, 0x12, 0x04]))
  writeFileSync(p('bad.json'), '{ not json')
  writeFileSync(p('arch.json'), JSON.stringify(DENSE_MODEL))
  writeFileSync(p('other.json'), '  {"hello": 1}')
  writeFileSync(p('graph.json'), JSON.stringify({ modelTopology: { node: [] }, weightsManifest: [] }))
  const big = openSync(p('big.json'), 'w')
  writeFileSync(big, '{')
  ftruncateSync(big, MAX_JSON_BYTES + 1)
  closeSync(big)
  t.equal(await detectFormat(p('model.onnx')), 'onnx')
  const cases: Array<[string, RegExp]> = [
    ['plain.h5', /plain\.h5 is an HDF5 file but not a Keras model \(no model_config attribute\)/],
    ['layer-names.h5', /holds only weights \(model\.save_weights\)/],
    ['layers.h5', /holds only weights/],
    ['folder', /folder is a folder, not a model file/],
    ['bad.json', /bad\.json is not valid JSON \(/],
    ['arch.json', /arch\.json is a Keras architecture \(model\.to_json\(\)\) without weights/],
    ['other.json', /other\.json is JSON but not a TF\.js layers model \(no modelTopology and weightsManifest\)/],
    ['graph.json', /graph\.json is a TF\.js graph model/],
    ['big.json', new RegExp(`big\\.json is a ${MAX_JSON_BYTES + 1}-byte JSON file`)]
  ]
  for (const [name, expected] of cases) t.match(await refusal(async () => await detectFormat(p(name), name)), expected, name)
  writeFileSync(p('array.json'), '[1, 2]')
  t.match(await refusal(async () => await detectFormat(p('array.json'), 'array.json')), /not a model this server recognises/, 'JSON must be an object')
  writeFileSync(p('empty-object.json'), '{}')
  t.match(await refusal(async () => await detectFormat(p('empty-object.json'), 'empty-object.json')), /JSON but not a TF\.js layers model/)
  // One or two bytes that only start like a pickle (protocol 2–5) or a protobuf (SavedModel, ONNX).
  for (const bytes of [[0x80], [0x80, 0x01], [0x80, 0x06], [0x08], [0x08, 0x02], [0x08, 0x50]]) {
    writeFileSync(p('short.bin'), Buffer.from(bytes))
    t.match(await refusal(async () => await detectFormat(p('short.bin'), 'short.bin')), /^short\.bin is not a model this server recognises/, bytes.join(','))
  }
})

/** model.json with DENSE_MODEL's Dense, its weights as `manifest` describes them, shards written beside it. */
function tfjsModel (dir: string, manifest: unknown, shards: Record<string, Buffer>, topology: Record<string, unknown> = { model_config: DENSE_MODEL }): string {
  for (const [name, data] of Object.entries(shards)) writeFileSync(join(dir, name), data)
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topology, weightsManifest: manifest }))
  return join(dir, 'model.json')
}
const f32 = (...v: number[]) => Buffer.from(Float32Array.from(v).buffer)

t.test('TF.js: float32, uint8 and uint16 affine-quantized weights decode to the same model', async (t) => {
  const plainDir = t.testdir()
  const plain = tfjsModel(plainDir, [
    { paths: ['a.bin', 'b.bin'], weights: [{ name: 'd/kernel', shape: [2, 1], dtype: 'float32' }, { name: 'd/bias', shape: [1], dtype: 'float32' }] },
    { paths: [], weights: 'not a list' }
  ], { 'a.bin': f32(3, 4).subarray(0, 6), 'b.bin': Buffer.concat([f32(3, 4).subarray(6), f32(0.5)]) }, { ...DENSE_MODEL, keras_version: '2.13.1' })
  t.equal(await detectFormat(plain), 'tfjs')
  const converted = await convertKerasFile(plain, 'tfjs', plainDir)
  t.same([converted.summary.kerasVersion, converted.summary.parameters], ['2.13.1', 3])
  t.same(await dense(Buffer.concat(converted.parts)), [11.5], 'a weight may span two shards')

  const qDir = t.testdir()
  const quantized = tfjsModel(qDir, [{
    paths: ['q.bin'],
    weights: [
      { name: 'd/kernel', shape: [2, 1], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: 2 } },
      { name: 'd/bias', shape: [1], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.25, min: -1 } },
      { name: 'lonely', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }
    ]
  }], { 'q.bin': Buffer.from([2, 4, 6, 0, 9]) })
  const model = await readTfjs(quantized, 'model.json')
  t.same([model.kerasVersion, model.shards], ['tfjs', ['q.bin']])
  t.same(Array.from(model.weights.lookup(['d'])?.byKind?.get('kernel')?.read() ?? []), [3, 4], 'q·0.5 + 2')
  t.same(Array.from(model.weights.lookup(['s', 'd'])?.byKind?.get('bias')?.read() ?? []), [0.5], 'uint16 little-endian 6: 6·0.25 − 1')
  t.equal(model.weights.lookup(['x']), undefined)
  t.same(Array.from(model.weights.lookup(['lonely'])?.byKind?.get('lonely')?.read() ?? []), [9], 'a name without a layer is its own layer')
  t.same(await dense(Buffer.concat((await convertKerasFile(quantized, 'tfjs', qDir)).parts)), [11.5])
})

t.test('TF.js weights that cannot be decoded are named', async (t) => {
  const one = (w: Record<string, unknown>, bytes: Buffer, name = 'w.bin') => async () => {
    const dir = t.testdir()
    return await readTfjs(tfjsModel(dir, [{ paths: [name], weights: [{ name: 'k', shape: [2], dtype: 'float32', ...w }] }], { [name]: bytes }), 'model.json')
  }
  t.match(await refusal(one({ dtype: 'int32' }, Buffer.alloc(8))), /^model\.json: weight "k": dtype int32 is not supported \(float32\)$/)
  t.match(await refusal(one({ quantization: { dtype: 'float16' } }, Buffer.alloc(4))), /weight "k": quantization float16 is not supported \(uint8\/uint16 affine\)/)
  t.match(await refusal(one({ quantization: { dtype: 'uint8', scale: 1 } }, Buffer.alloc(2))), /quantization uint8 is not supported/, 'min missing')
  t.match(await refusal(one({}, f32(1))), /weight "k" runs past the end of its shards \(4 bytes\): a shard is truncated/)
  t.match(await refusal(one({ shape: [2.5] }, f32(1))), /weight "k": a weight of shape \[2\.5\] is not plausible/)
  t.match(await refusal(one({ dtype: 'bfloat16' }, Buffer.alloc(64))), /dtype bfloat16 is not supported/, 'an unknown dtype is sized as 4 bytes')
  const dir = t.testdir()
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ modelTopology: DENSE_MODEL, weightsManifest: [{ paths: ['gone.bin'], weights: [] }] }))
  t.match(await refusal(async () => await readTfjs(join(dir, 'model.json'), 'model.json')), /^model\.json: weight shard gone\.bin is missing$/)
})

t.test('shardPaths keeps shards beside model.json', async (t) => {
  t.same(shardPaths([{ paths: ['a.bin', 'group1-shard1of2'] }, 'odd', { paths: 'x' }, { weights: [] }], 'm'), ['a.bin', 'group1-shard1of2'])
  t.throws(() => shardPaths({}, 'm'), { message: 'm: weightsManifest is not a list' })
  for (const bad of ['../a.bin', 'sub/a.bin', '..', '.', '', 7]) {
    t.throws(() => shardPaths([{ paths: [bad] }], 'm'), { message: `m: weight shard path ${JSON.stringify(bad)} is not a file name beside model.json` }, String(bad))
  }
})

t.test('weights: float32 as is, float64 narrowed, anything else refused; implausible shapes refused', async (t) => {
  const f = Float32Array.of(1, 2)
  t.equal(toFloat32(f, 'w'), f, 'float32 is not copied')
  t.same(Array.from(toFloat32(Float64Array.of(0.1, 2), 'w')), [Math.fround(0.1), 2])
  t.throws(() => toFloat32(Uint8Array.of(1), 'w'), { message: 'w: weights of type Uint8Array are not supported (float32 or float64 only)' })
  t.throws(() => toFloat32(null, 'w'), { message: 'w: weights of type object are not supported (float32 or float64 only)' })
  t.throws(() => toFloat32('abc', 'w'), { message: /weights of type String are not supported/ })
  checkWeightSize([3, 3, 64, 64], 'w')
  t.throws(() => checkWeightSize([-1, 2], 'w'), { message: /w: a weight of shape \[-1, 2\] is not plausible/ })
  t.throws(() => checkWeightSize([2 ** 20, 2 ** 11], 'w'), { message: /not plausible \(over 1073741824 values\)/ })
  t.same(['block1/conv/kernel:0', 'bias', 'dense/moving_mean:12'].map(weightKind), ['kernel', 'bias', 'moving_mean'])
})

t.test('a Keras format name other than keras-h5/keras is read as TF.js', async (t) => {
  const dir = t.testdir()
  const path = tfjsModel(dir, [{ paths: ['w.bin'], weights: [{ name: 'd/kernel', shape: [2, 1], dtype: 'float32' }, { name: 'd/bias', shape: [1], dtype: 'float32' }] }], { 'w.bin': Buffer.concat([f32(3, 4), f32(0.5)]) })
  const format: KerasFormat = 'tfjs'
  t.equal((await convertKerasFile(path, format, dir)).summary.format, 'tfjs')
})
