// Inference choices on one model, in-process (issue 11 item 5): ms per image at batch 1 vs
// micro-batches, one thread vs two, and the memory each extra session costs (one per worker).
//   npm run bench:inference [-- --model DIR] [-- --gmacs G]   (default models/demo; the ensemble: .scratch/bench/ensemble-bundle)
// Not a test: figures go in the README. Runs on this thread; the machine's other load is printed.
import { statSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { openBundle } from '../src/models/bundle.js'
import { median, openSession } from './bench-limit.js'
import { processRssMiB } from './bench-server.js'

const { values: flags } = parseArgs({ options: { model: { type: 'string', default: 'models/demo' }, gmacs: { type: 'string' } } })
const bundle = await openBundle(flags.model)
const spec = bundle.spec
if (spec === undefined) throw new Error(`${flags.model} has no manifest.json (run shine-models convert on a Keras file first)`)
const [h, w] = [spec.input.height, spec.input.width]
const dims = (batch: number) => spec.input.layout === 'NHWC' ? [batch, h, w, 3] : [batch, 3, h, w]
// Multiply-adds per image in G (--gmacs; the ensemble: ~4.5, EfficientNetB0 0.39 + ResNet50 4.1), for GFLOP/s per core.
const gmacs = flags.gmacs === undefined ? undefined : Number(flags.gmacs)
const RUNS = 12
const f = (v: number, d = 1) => Number.isFinite(v) ? v.toFixed(d) : '–'

async function perImageMs (session: ort.InferenceSession, batch: number): Promise<number> {
  const data = new Float32Array(dims(batch).reduce((a, b) => a * b, 1)).map((_, i) => (i % 251) / 251)
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, dims(batch)) }
  for (let i = 0; i < 2; i++) await session.run(feeds)
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    await session.run(feeds)
    times.push((performance.now() - t0) / batch)
  }
  return median(times)
}

console.log(`bench:inference — ${spec.name} (${flags.model}); ${os.cpus()[0]?.model.trim()} × ${os.availableParallelism()}, Node ${process.version}, onnxruntime-node ${ort.env.versions.common}; loadavg ${os.loadavg().map((l) => f(l, 2)).join(' ')}`)
const rss0 = processRssMiB(process.pid).rss
const one = await openSession(bundle.modelFile, 1)
const rss1 = processRssMiB(process.pid).rss
const rows: string[][] = []
for (const batch of [1, 2, 4, 8]) {
  const ms = await perImageMs(one, batch)
  rows.push([`1 thread, batch ${batch}`, f(ms, 1), gmacs === undefined ? '–' : f(2 * gmacs / (ms / 1000), 1)])
}
const two = await openSession(bundle.modelFile, 2)
const rss2 = processRssMiB(process.pid).rss
const ms2 = await perImageMs(two, 1)
rows.push(['2 threads, batch 1 (per image; 2 cores busy)', f(ms2, 1), gmacs === undefined ? '–' : f(2 * gmacs / (ms2 / 1000) / 2, 1)])
console.log('| configuration | ms/image | GFLOP/s per core (2 × MAC/s) |\n|---|---:|---:|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
console.log(`sessions: the first costs ${f(rss1 - rss0, 0)} MiB RSS, a second one (what each extra worker adds) ${f(rss2 - rss1, 0)} MiB; model file ${f(statSync(bundle.modelFile).size / 2 ** 20, 0)} MiB`)
console.log(`loadavg after: ${os.loadavg().map((l) => f(l, 2)).join(' ')}`)
await one.release()
await two.release()
