// shine-models convert: a Keras/TF.js model → a servable ONNX bundle (model.onnx + manifest.json),
// with the labels the server would find (README "Keras models"). Runs on the CLI's own thread.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import type { ConvertSummary } from '../convert/convert.js'
import { MANIFEST_FILE } from '../models/bundle.js'
import { readSideLabels } from '../models/labels.js'
import { checkSpecAgainstModel, parseManifest, type ModelSpec } from '../models/manifest.js'

export interface ConvertCliOptions {
  modelPath: string
  out: string | undefined
  check: boolean
  print: (line: string) => void
}

const STEM = /\.(h5|hdf5|keras|json)$/i

// Seeded uniform 0..1 inputs (mulberry32), as the fixtures' expected.json use.
function seeded (n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let a = seed >>> 0
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    out[i] = ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return out
}

async function manifestBeside (modelPath: string): Promise<ModelSpec | undefined> {
  const text = await readFile(join(dirname(modelPath), MANIFEST_FILE), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : parseManifest(text)
}

const count = (table: Record<string, number>) => Object.entries(table).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')

/** Converts, writes the bundle, prints a one-screen summary; `--check` runs the graph on seeded inputs. */
export async function convertCommand (o: ConvertCliOptions): Promise<void> {
  const { detectFormat } = await import('../convert/detect.js')
  const { CONVERTER_VERSION, convertKerasFile } = await import('../convert/convert.js')
  const { ConvertError } = await import('../convert/errors.js')
  if (!(await stat(o.modelPath).catch(() => undefined))?.isFile()) throw new ConvertError(`${o.modelPath} is not a file`)
  const format = await detectFormat(o.modelPath)
  if (format === 'onnx') throw new ConvertError(`${o.modelPath} is already an ONNX model: serve or push it as it is`)
  const out = resolve(o.out ?? `${basename(o.modelPath).replace(STEM, '')}-onnx`)
  // Nothing is written to --out unless the conversion succeeds.
  const work = await mkdtemp(join(tmpdir(), 'shine-convert-'))
  const { parts, summary } = await convertKerasFile(o.modelPath, format, work, o.modelPath).finally(async () => await rm(work, { recursive: true, force: true }))

  // One buffer here: the CLI hands it to ONNX Runtime for the check as well as writing it.
  const onnx = Buffer.concat(parts)
  const given = await manifestBeside(o.modelPath)
  const side = given === undefined ? await readSideLabels(dirname(o.modelPath)) : undefined
  const input = summary.inputs[0]!
  const output = summary.outputs[0]!
  const [, height, width] = input.dims
  const classes = output.dims.at(-1)
  if (typeof height !== 'number' || typeof width !== 'number' || typeof classes !== 'number') {
    throw new ConvertError(`${o.modelPath}: input ${JSON.stringify(input.dims)} / output ${JSON.stringify(output.dims)} need fixed sizes for a bundle`)
  }
  const ort = await import('onnxruntime-node')
  const session = await ort.InferenceSession.create(onnx)
  const runs = async (batch: number, seed: number) => {
    const data = seeded(batch * height * width * 3, seed)
    const started = performance.now()
    const result = await session.run({ [input.name]: new ort.Tensor('float32', data, [batch, height, width, 3]) })
    return { values: result[output.name]!.data as Float32Array, ms: performance.now() - started }
  }
  // The activation the server applies: none when the model already ends in a softmax.
  const probe = await runs(1, 1)
  const isDistribution = probe.values.every((v) => v >= 0) && Math.abs(probe.values.reduce((a, b) => a + b, 0) - 1) < 1e-3
  const labels = given?.labels ?? side?.labels ?? Array.from({ length: classes }, (_, i) => `class_${i}`)
  const sha256 = createHash('sha256').update(onnx).digest('hex')
  const manifest = {
    name: given?.name ?? basename(o.modelPath).replace(STEM, ''),
    version: given?.version ?? `converted-${sha256.slice(0, 12)}`,
    format: 'onnx',
    file: 'model.onnx',
    sha256: { 'model.onnx': sha256 },
    input: {
      name: input.name, layout: 'NHWC', width, height,
      mean: given?.input.mean ?? [0, 0, 0], std: given?.input.std ?? [1, 1, 1], channels: given?.input.channels ?? 'RGB'
    },
    output: { name: output.name, activation: given?.output.activation ?? (isDistribution ? 'none' : 'softmax') },
    labels,
    converted_from: { file: basename(o.modelPath), format, sha256: createHash('sha256').update(await readFile(o.modelPath)).digest('hex'), converter: CONVERTER_VERSION }
  }
  const spec = parseManifest(JSON.stringify(manifest))
  const describe = (m: { name: string, isTensor: boolean, shape?: ReadonlyArray<number | string> }) => ({ name: m.name, dims: m.isTensor ? [...(m.shape ?? [])] : [] })
  checkSpecAgainstModel(spec, session.inputMetadata.map(describe), session.outputMetadata.map(describe))
  await mkdir(out, { recursive: true })
  await writeFile(join(out, 'model.onnx'), onnx)
  await writeFile(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`)

  printSummary(o, summary, { out, onnxBytes: onnx.byteLength, labelsFrom: given !== undefined ? MANIFEST_FILE : side?.file ?? 'none (class_0…)', activation: manifest.output.activation, labels })
  if (o.check) {
    const batch = await runs(2, 2)
    const finite = batch.values.every(Number.isFinite)
    o.print(`check: ran the ONNX graph on 2 seeded inputs in ${batch.ms.toFixed(1)} ms: ${finite ? 'all outputs finite' : 'NON-FINITE outputs'}, range ${Math.min(...batch.values).toFixed(4)}..${Math.max(...batch.values).toFixed(4)}`)
    if (!finite) throw new ConvertError(`${o.modelPath}: the converted graph produced NaN or Infinity on seeded inputs`)
  }
  await session.release()
}

function printSummary (o: ConvertCliOptions, s: ConvertSummary, w: { out: string, onnxBytes: number, labelsFrom: string, activation: string, labels: readonly string[] }): void {
  const dims = (d: ReadonlyArray<number | string>) => `[${d.join(', ')}]`
  o.print(`converted ${o.modelPath} (${s.format}, Keras ${s.kerasVersion}, model "${s.modelName}") in ${s.ms.toFixed(0)} ms`)
  for (const i of s.inputs) o.print(`  input   ${i.name} ${dims(i.dims)} (NHWC, RGB, pixels 0..1)`)
  for (const x of s.outputs) o.print(`  output  ${x.name} ${dims(x.dims)}, activation ${w.activation}`)
  o.print(`  labels  ${w.labels.length} from ${w.labelsFrom}: ${w.labels.slice(0, 10).join(', ')}${w.labels.length > 10 ? ', …' : ''}`)
  o.print(`  params  ${s.parameters.toLocaleString('en-US')}`)
  o.print(`  layers  ${count(s.layers)}`)
  o.print(`  onnx    ${count(s.onnxOps)}`)
  o.print(`wrote ${join(w.out, 'model.onnx')} (${(w.onnxBytes / 1e6).toFixed(2)} MB) and ${join(w.out, MANIFEST_FILE)}`)
}
