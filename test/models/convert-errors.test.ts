// Every file the converter refuses, served as MODEL_PATH: the boot error is the converter's one
// line, nothing is left half-written in MODEL_DIR or beside the user's file, and memory settles
// across repeated failed conversions (each runs in its own thread, which takes its memory with it).
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import yazl from 'yazl'
import { localStore } from '../../src/models/store.js'
import { layersOf, withEditedConfig } from '../helpers/keras-files.js'
import { LAMBDA_H5, SAVEDMODEL_PB, kerasFixture } from '../helpers/keras.js'

const MINI = kerasFixture('mini_ensemble/model.h5')

async function zipOf (entries: Record<string, Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name)
  zip.end()
  const chunks: Buffer[] = []
  for await (const c of zip.outputStream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** A .keras whose weights inflate to 16 MiB while both zip headers declare 1 KiB. */
async function inflatingKeras (): Promise<Buffer> {
  const bytes = await zipOf({ 'config.json': await readFile(kerasFixture('mini_ensemble/expected.json')), 'model.weights.h5': Buffer.alloc(16 * 2 ** 20) })
  for (let at = bytes.indexOf('model.weights.h5'); at >= 0; at = bytes.indexOf('model.weights.h5', at + 1)) {
    if (bytes.readUInt32LE(at - 30) === 0x04034b50) bytes.writeUInt32LE(1024, at - 30 + 22)
    if (bytes.readUInt32LE(at - 46) === 0x02014b50) bytes.writeUInt32LE(1024, at - 46 + 24)
  }
  return bytes
}

const lastDense = (c: Record<string, unknown>) => layersOf(c).filter((l) => l.class_name === 'Dense').at(-1) as { config: Record<string, unknown> }

interface Case { name: string, file: string, message: RegExp }

async function cases (dir: string): Promise<Case[]> {
  await mkdir(dir, { recursive: true })
  const put = async (name: string, bytes: Buffer) => {
    await mkdir(join(dir, name))
    await writeFile(join(dir, name, 'model.h5'), bytes)
    return join(dir, name, 'model.h5')
  }
  const edited = async (name: string, edit: (c: Record<string, unknown>) => void) => {
    await mkdir(join(dir, name))
    return await withEditedConfig(MINI, join(dir, name), edit)
  }
  const mini = await readFile(MINI)
  const keras = async (name: string, bytes: Buffer) => {
    await mkdir(join(dir, name))
    await writeFile(join(dir, name, 'model.keras'), bytes)
    return join(dir, name, 'model.keras')
  }
  await mkdir(join(dir, 'savedmodel'))
  await copyFile(SAVEDMODEL_PB, join(dir, 'savedmodel', 'saved_model.pb'))
  return [
    { name: 'unsupported layer', file: await edited('unsupported', (c) => { (layersOf(c).find((l) => l.class_name === 'Dense') as { class_name: string }).class_name = 'EinsumDense' }), message: /is a EinsumDense, which this server cannot convert.*Supported layers: / },
    { name: 'Lambda', file: LAMBDA_H5, message: /is a Lambda: it holds Python code/ },
    { name: 'SavedModel', file: join(dir, 'savedmodel', 'saved_model.pb'), message: /TensorFlow SavedModel.*model\.save\("model\.h5"\)/ },
    { name: 'weights mismatch', file: await edited('mismatch', (c) => { lastDense(c).config.units = 9 }), message: /layer "dense_2" \(Dense\): weight "kernel" has shape \[\d+, 8\] but the layer needs \[\d+, 9\]/ },
    { name: 'truncated HDF5', file: await put('truncated', mini.subarray(0, mini.length >> 1)), message: /truncated: the HDF5 header records/ },
    { name: 'a zip that is not a .keras', file: await keras('notkeras', await zipOf({ 'notes.txt': Buffer.from('hi') })), message: /a zip but not a Keras \.keras file/ },
    { name: 'a .keras inflating past its declared size', file: await keras('bomb', await inflatingKeras()), message: /the zip is damaged \(too many bytes in the stream/ },
    { name: 'a weight of absurd size', file: await edited('absurd', (c) => { lastDense(c).config.units = 2 ** 40 }), message: /but the layer needs \[\d+, 1099511627776\]/ }
  ]
}

const rss = async () => {
  global.gc?.()
  await new Promise((resolve) => setImmediate(resolve))
  return process.memoryUsage().rss
}

t.test('each refusal is one line, leaves nothing half-written, and memory settles', async (t) => {
  const dir = t.testdir()
  const modelDir = join(dir, 'MODEL_DIR')
  const all = await cases(join(dir, 'models'))
  const samples: number[] = []
  {
    for (const c of all) {
      const before = (await readdir(join(c.file, '..'))).sort()
      const failure = await localStore(c.file, modelDir).resolve().then(() => undefined, (err: unknown) => err as Error)
      t.match(failure, { name: 'ConvertError', message: c.message }, c.name)
      t.notMatch(failure?.message, /\n/, `${c.name}: one line`)
      t.same(await readdir(join(modelDir, 'converted')), [], `${c.name}: nothing in MODEL_DIR`)
      t.same((await readdir(join(c.file, '..'))).sort(), before, `${c.name}: nothing beside the file`)
      samples.push(await rss())
    }
  }
  // Each conversion loads h5wasm and the file in a thread of its own (tens of MB): a leak would
  // grow RSS with every failure. (Each worker costs seconds under tap's TypeScript loader, so 8.)
  const early = samples[2] as number
  const last = samples.at(-1) as number
  t.comment(`RSS after 3 failed conversions: ${(early / 2 ** 20).toFixed(0)} MiB, after ${samples.length}: ${(last / 2 ** 20).toFixed(0)} MiB`)
  t.ok(last / early < 1.25, `RSS after ${samples.length} failures is ${(last / early).toFixed(2)}× that after 3`)
})
