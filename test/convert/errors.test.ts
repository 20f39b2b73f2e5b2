// Every file the converter refuses: the message says what it is and what to do, nothing is left
// behind in the work folder, and memory does not grow with repeated failures.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import yazl from 'yazl'
import { convertKerasFile, type KerasFormat } from '../../src/convert/convert.js'
import { detectFormat } from '../../src/convert/detect.js'
import { ConvertError } from '../../src/convert/errors.js'
import { KERAS_FIXTURES } from '../helpers/keras-fixtures.js'
import { layersOf, withEditedConfig } from '../helpers/keras-files.js'

const fixture = (...p: string[]) => join(KERAS_FIXTURES, ...p)
const MINI = fixture('mini_ensemble', 'model.h5')

async function refusal (path: string, workDir: string): Promise<string> {
  try {
    const format = await detectFormat(path)
    await convertKerasFile(path, format as KerasFormat, workDir)
  } catch (err) {
    if (!(err instanceof ConvertError)) throw err
    return err.message
  }
  throw new Error(`${path} was converted`)
}

async function zipOf (entries: Record<string, Buffer>, dest: string): Promise<string> {
  const zip = new yazl.ZipFile()
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name)
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream) chunks.push(c as Buffer)
  writeFileSync(dest, Buffer.concat(chunks))
  return dest
}

t.test('files that are not Keras models are named, with export advice', async (t) => {
  const dir = t.testdir({ 'model.pkl': Buffer.from([0x80, 0x04, 0x95, 0x10, 0x00]), 'notes.txt': 'hello', 'empty.h5': '' })
  const cases: Array<[string, RegExp]> = [
    [fixture('errors', 'savedmodel', 'saved_model.pb'), /TensorFlow SavedModel.*model\.save\("model\.h5"\)/],
    [fixture('errors', 'savedmodel'), /TensorFlow SavedModel/],
    [fixture('errors', 'tfjs-graph', 'model.json'), /TF\.js graph model.*tfjs_layers_model/],
    [fixture('errors', 'weights-only', 'model.weights.h5'), /only weights \(model\.save_weights\)/],
    [fixture('errors', 'weights-only', 'legacy.h5'), /only weights/],
    [join(dir, 'model.pkl'), /Python pickle.*never accepted/],
    [join(dir, 'notes.txt'), /not a model this server recognises/],
    [join(dir, 'empty.h5'), /is empty/]
  ]
  for (const [path, expected] of cases) t.match(await refusal(path, dir), expected, path.split('/').slice(-2).join('/'))
})

t.test('a Lambda layer is refused for what it is, never run', async (t) => {
  t.match(await refusal(fixture('errors', 'lambda', 'model.h5'), t.testdir()), /is a Lambda: it holds Python code/)
})

t.test('an unsupported layer names its class and lists what is supported', async (t) => {
  const dir = t.testdir()
  const edited = await withEditedConfig(MINI, dir, (c) => {
    const dense = layersOf(c).find((l) => l.class_name === 'Dense') as { class_name: string }
    dense.class_name = 'EinsumDense'
  })
  const message = await refusal(edited, dir)
  t.match(message, /layer "dense(_\d+)?" is a EinsumDense, which this server cannot convert/)
  t.match(message, /Supported layers: .*Conv2D.*Dense.*DepthwiseConv2D/)
})

t.test('weights that do not match the architecture name the layer', async (t) => {
  const dir = t.testdir()
  const wider = await withEditedConfig(MINI, dir, (c) => {
    const dense = layersOf(c).filter((l) => l.class_name === 'Dense').at(-1) as { config: Record<string, unknown> }
    dense.config.units = 9
  })
  t.match(await refusal(wider, dir), /layer "dense_2" \(Dense\): weight "kernel" has shape \[\d+, 8\] but the layer needs \[\d+, 9\]/)
  const renamed = await withEditedConfig(MINI, dir, (c) => {
    const layers = layersOf(c)
    const dense = layers.find((l) => l.name === 'dense_2') as { name: string, config: Record<string, unknown> }
    dense.name = 'head'
    dense.config.name = 'head'
    // Keras 3 writes one output as a flat [layer, node, tensor]
    ;(c.config as { output_layers: unknown[] }).output_layers = ['head', 0, 0]
  })
  t.match(await refusal(renamed, dir), /layer "head" \(Dense\): weight "kernel" is missing from the file/)
})

t.test('a config declaring a weight of absurd size fails before anything is allocated', async (t) => {
  const dir = t.testdir()
  const edited = await withEditedConfig(MINI, dir, (c) => {
    const dense = layersOf(c).filter((l) => l.class_name === 'Dense').at(-1) as { config: Record<string, unknown> }
    dense.config.units = 2 ** 40
  })
  const before = process.memoryUsage().rss
  t.match(await refusal(edited, dir), /weight "kernel" has shape \[\d+, 8\] but the layer needs \[\d+, 1099511627776\]/)
  t.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, 'no terabyte allocation was attempted')
  const json = JSON.parse(readFileSync(fixture('mini_ensemble', 'tfjs', 'model.json'), 'utf8')) as { weightsManifest: Array<{ weights: Array<{ shape: number[] }> }> }
  ;(json.weightsManifest[0]?.weights[0] as { shape: number[] }).shape = [2 ** 20, 2 ** 20, 2 ** 10]
  const tfjsDir = join(dir, 'tfjs')
  mkdirSync(tfjsDir)
  writeFileSync(join(tfjsDir, 'model.json'), JSON.stringify(json))
  copyFileSync(fixture('mini_ensemble', 'tfjs', 'group1-shard1of1.bin'), join(tfjsDir, 'group1-shard1of1.bin'))
  t.match(await refusal(join(tfjsDir, 'model.json'), tfjsDir), /a weight of shape \[1048576, 1048576, 1024\] is not plausible/)
})

t.test('a truncated HDF5 file says so', async (t) => {
  const bytes = readFileSync(MINI)
  const dir = t.testdir({ 'half.h5': bytes.subarray(0, bytes.length >> 1), 'head.h5': bytes.subarray(0, 100) })
  t.match(await refusal(join(dir, 'half.h5'), dir), new RegExp(`truncated: the HDF5 header records ${bytes.length} bytes but the file has ${bytes.length >> 1}`))
  t.match(await refusal(join(dir, 'head.h5'), dir), /truncated/)
})

t.test('zips: not a .keras, and a .keras that inflates past its declared size', async (t) => {
  const dir = t.testdir()
  t.match(await refusal(await zipOf({ 'notes.txt': Buffer.from('hi') }, join(dir, 'other.zip')), dir), /a zip but not a Keras \.keras file .*it has notes\.txt/)
  // 16 MiB of zeros deflate to a few KB; then the declared (uncompressed) size of
  // model.weights.h5 is rewritten to 1 KiB in both headers, so inflating runs past it.
  const packed = await zipOf({ 'config.json': readFileSync(fixture('mini_ensemble', 'expected.json')), 'model.weights.h5': Buffer.alloc(16 * 2 ** 20) }, join(dir, 'packed.keras'))
  const bytes = readFileSync(packed)
  let patched = 0
  for (let at = bytes.indexOf('model.weights.h5'); at >= 0; at = bytes.indexOf('model.weights.h5', at + 1)) {
    if (bytes.readUInt32LE(at - 30) === 0x04034b50) { bytes.writeUInt32LE(1024, at - 30 + 22); patched++ }
    if (bytes.readUInt32LE(at - 46) === 0x02014b50) { bytes.writeUInt32LE(1024, at - 46 + 24); patched++ }
  }
  t.equal(patched, 2, 'both headers patched')
  const bomb = join(dir, 'bomb.keras')
  writeFileSync(bomb, bytes)
  const work = join(dir, 'work')
  mkdirSync(work)
  t.match(await refusal(bomb, work), /bomb\.keras: the zip is damaged \(too many bytes in the stream\. expected 1024/)
  t.same(readdirSync(work), [], 'no extracted weights are left behind')
})

t.test('repeated failures do not grow memory', async (t) => {
  const dir = t.testdir()
  const edited = await withEditedConfig(MINI, dir, (c) => {
    const dense = layersOf(c).filter((l) => l.class_name === 'Dense').at(-1) as { config: Record<string, unknown> }
    dense.config.units = 9
  })
  const settle = async () => {
    global.gc?.()
    await new Promise((resolve) => setImmediate(resolve))
    return process.memoryUsage().rss
  }
  for (let i = 0; i < 5; i++) await refusal(edited, dir)
  const warm = await settle()
  for (let i = 0; i < 40; i++) await refusal(edited, dir)
  const after = await settle()
  t.ok(after / warm < 1.25, `RSS after 40 more failures is ${(after / warm).toFixed(2)}× that after 5`)
})
