// `npm run bench:convert`: keras.applications models and the team's ensemble, converted by the
// built server code (one child process per model, so peak RSS is the conversion's own), checked
// against Keras's outputs and timed in ONNX Runtime on one thread next to Keras's own timings.
// The Keras half (models, outputs, timings) comes from scripts/keras/bench_models.py in the venv
// that the README describes; it is built once into .scratch/bench/ and reused.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { loadCase, maxAbsDiff } from '../test/helpers/keras-fixtures.js'

const ROOT = new URL('..', import.meta.url).pathname
const BENCH = join(ROOT, '.scratch', 'bench')
const PYTHON = process.env.KERAS_PYTHON ?? '/work/.venv-keras/bin/python'
const only = process.argv.find((a) => a.startsWith('--models='))?.slice('--models='.length)
const RUNS = Number(process.env.BENCH_RUNS ?? 20)

if (!existsSync(BENCH) || readdirSync(BENCH).length === 0) {
  console.log(`building the Keras models with ${PYTHON} (once) …`)
  execFileSync(PYTHON, [join(ROOT, 'scripts/keras/bench_models.py'), '--out', BENCH, ...(only !== undefined ? ['--models', only] : [])], { stdio: 'inherit' })
}

// The conversion in a fresh Node process running dist/ (what the server runs), reporting its
// time (writing the file included, as the server does), peak RSS and the ONNX bytes' size; the
// graph itself is written beside the model.
const CHILD = `
import { rmSync } from 'node:fs'
import { writeOnnx } from '${join(ROOT, 'dist/convert/write-onnx.js')}'
import { convertKerasFile } from '${join(ROOT, 'dist/convert/convert.js')}'
import { detectFormat } from '${join(ROOT, 'dist/convert/detect.js')}'
const [file, out] = process.argv.slice(1)
const started = performance.now()
const { parts, summary } = await convertKerasFile(file, await detectFormat(file), '${os.tmpdir()}')
rmSync(out, { force: true })
await writeOnnx(parts, out)
const ms = performance.now() - started
console.log(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024, parameters: summary.parameters, nodes: Object.values(summary.onnxOps).reduce((a, b) => a + b, 0), transposes: summary.onnxOps.Transpose ?? 0 }))
`

interface Row { model: string, fileMb: number, params: number, nodes: number, transposes: number, convertMs: number, rssMb: number, rssRatio: number, maxDiff: number, ortMs: number, predictMs: number, tfFunctionMs: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function ortMsPerImage (onnxFile: string, input: { shape: number[], data: Float32Array }): Promise<{ ms: number, out: Float32Array }> {
  const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })
  const one = input.data.subarray(0, input.data.length / (input.shape[0] as number))
  const feeds = { [session.inputNames[0] as string]: new ort.Tensor('float32', one, [1, ...input.shape.slice(1)]) }
  for (let i = 0; i < 3; i++) await session.run(feeds)
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    await session.run(feeds)
    times.push(performance.now() - t0)
  }
  const full = await session.run({ [session.inputNames[0] as string]: new ort.Tensor('float32', input.data, input.shape) })
  const out = full[session.outputNames[0] as string]?.data as Float32Array
  await session.release()
  return { ms: median(times), out }
}

const rows: Row[] = []
for (const model of readdirSync(BENCH).sort()) {
  if (only !== undefined && !only.split(',').includes(model)) continue
  const dir = join(BENCH, model)
  const file = ['best_facial_model.h5', 'model.h5'].map((f) => join(dir, f)).find((f) => existsSync(f))
  if (file === undefined || !existsSync(join(dir, 'expected.json'))) continue
  const onnxFile = join(dir, 'converted.onnx')
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, file, onnxFile], { encoding: 'utf8' })
  if (child.status !== 0) {
    console.log(`${model}: conversion failed: ${child.stderr.split('\n').find((l) => l.includes('Error')) ?? child.stderr.slice(0, 300)}`)
    continue
  }
  const c = JSON.parse(child.stdout.trim().split('\n').at(-1) as string) as { ms: number, maxRssMb: number, parameters: number, nodes: number, transposes: number }
  const expected = loadCase(dir)
  const { ms, out } = await ortMsPerImage(onnxFile, expected.inputs[0] as { shape: number[], data: Float32Array })
  const timing = JSON.parse(readFileSync(join(dir, 'keras-timing.json'), 'utf8')) as { predict_batch1_ms: { median_ms: number }, tf_function_batch1_ms: { median_ms: number } }
  const fileMb = statSync(file).size / 2 ** 20
  rows.push({
    model, fileMb, params: c.parameters, nodes: c.nodes, transposes: c.transposes, convertMs: c.ms, rssMb: c.maxRssMb, rssRatio: c.maxRssMb / fileMb,
    maxDiff: maxAbsDiff(out, (expected.outputs[0] as { data: Float32Array }).data), ortMs: ms, predictMs: timing.predict_batch1_ms.median_ms, tfFunctionMs: timing.tf_function_batch1_ms.median_ms
  })
  const r = rows.at(-1) as Row
  console.log(`${model}: converted in ${r.convertMs.toFixed(0)} ms, max|Δ| ${r.maxDiff.toExponential(1)}, ORT ${r.ortMs.toFixed(1)} ms/image`)
}

const cpus = os.cpus()
console.log(`\nmachine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; Node ${process.version}, onnxruntime-node ${ort.env.versions.common}; ONNX Runtime and Keras on one thread, batch 1, median of ${RUNS}`)
console.log('| model | .h5 MB | params | ONNX nodes (Transpose) | convert ms | peak RSS MB (× file) | max abs diff vs Keras | ORT ms/img | Keras predict ms | tf.function ms | × predict | × tf.function |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(`| ${r.model} | ${r.fileMb.toFixed(1)} | ${(r.params / 1e6).toFixed(2)} M | ${r.nodes} (${r.transposes}) | ${r.convertMs.toFixed(0)} | ${r.rssMb.toFixed(0)} (${r.rssRatio.toFixed(2)}) | ${r.maxDiff.toExponential(1)} | ${r.ortMs.toFixed(1)} | ${r.predictMs.toFixed(1)} | ${r.tfFunctionMs.toFixed(1)} | ${(r.predictMs / r.ortMs).toFixed(2)} | ${(r.tfFunctionMs / r.ortMs).toFixed(2)} |`)
}
