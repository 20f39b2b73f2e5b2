// Benchmark of issue 10: npm run bench:swap [-- --model demo|heavy]
// The built server on a model in a loopback S3 server (fauxqs): its capacity, then 50 % of it
// for SWAP_LOAD_S (60) while SWAPS (5) new versions are pushed (each followed by SIGHUP, so the
// figure is the swap itself, not the poll interval): non-2xx answers, p99 during swaps vs steady,
// time from a push to the first answer from it, peak RSS. Then ROW_SWAPS (20) swaps in a row
// without load: RSS after the 20th vs after the 2nd (ONNX Runtime is reported to grow RSS on
// every session create/release: microsoft/onnxruntime#25325, #26831).
// `--model heavy` serves a 128 MB dense model (the size of the team's hare_run_v6_facial), where
// two pools at once cost the most memory. Not a test: it prints, it does not assert.
import { Upload } from '@aws-sdk/lib-storage'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createHash } from 'node:crypto'
import { makeImages } from './bench-images.js'
import { closedLoop, f, LoadClient, mib, openLoop, printMachine, printTable, RssSampler, rssBytes, targetsFor, type Shot } from './bench-load.js'
import { buildBigModel } from './bench-model.js'
import { envNumber, percentile, startServer, stopAndReport, BENCH_MODEL_PATH, BENCH_ROOT, BENCH_SERVER_ENTRY } from './bench-server.js'
import { TINY_MANIFEST, s3Env, startFakeS3 } from '../test/helpers/s3.js'

const LOAD_S = envNumber('SWAP_LOAD_S', 60)
const SWAPS = envNumber('SWAPS', 5)
const ROW_SWAPS = envNumber('ROW_SWAPS', 20)
const CAPACITY_S = 8
const BUCKET = 'bench'
const KEY = 'live/model.onnx'
// How long after a version's first answer a swap still counts as running (drain and close).
const SWAP_TAIL_MS = 1000

const { values: flags } = parseArgs({ options: { model: { type: 'string', default: 'demo' } } })
const workers = Math.max(1, os.availableParallelism())

async function bundle (): Promise<{ model: Uint8Array, manifest: Record<string, unknown> }> {
  if (flags.model === 'heavy') {
    const model = buildBigModel({ bytes: 128 * 1024 * 1024, classes: 8, size: 32, seed: 7 })
    return { model, manifest: { ...TINY_MANIFEST, name: 'bench-heavy-128mb', input: { ...TINY_MANIFEST.input, name: 'input' }, output: { name: 'logits', activation: 'softmax' } } }
  }
  const manifest = JSON.parse(await readFile(join(BENCH_MODEL_PATH, 'manifest.json'), 'utf8')) as Record<string, unknown> & { file: string }
  return { model: await readFile(join(BENCH_MODEL_PATH, manifest.file)), manifest }
}

printMachine()
const s3 = await startFakeS3()
await s3.createBucket(BUCKET)
const { model, manifest } = await bundle()
const sha256 = createHash('sha256').update(model).digest('hex')
// Multipart: fauxqs takes at most ~11 MiB per request (a 128 MiB PUT is a 413).
await new Upload({ client: s3.client, params: { Bucket: BUCKET, Key: KEY, Body: model }, partSize: 8 * 1024 * 1024 }).done()
// A new version is a new manifest (its ETag changes the version): the server downloads and
// verifies the bundle again and starts a pool on it, as for a retrained model.
const pushVersion = async (version: string) => {
  await s3.put(BUCKET, 'live/manifest.json', JSON.stringify({ ...manifest, file: 'model.onnx', version, sha256: { 'model.onnx': sha256 } }))
}
await pushVersion('bench-0')
const modelDir = await mkdtemp(join(os.tmpdir(), 'shine-bench-swap-'))
const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY, {
  ...s3Env(s3.endpoint), S3_BUCKET: BUCKET, S3_MODEL_KEY: KEY, MODEL_DIR: modelDir, MODEL_POLL_S: '0', MODEL_SWAP: 'live', WORKERS: String(workers), RATE_LIMIT_MAX: '0'
})
console.log(`model: ${flags.model} (${mib(model.length)} MiB), ${workers} workers; server pid ${server.pid}, RSS ${mib(rssBytes(server.pid))} MiB`)

const [image] = targetsFor(server.url, (await makeImages()).slice(0, 1))
const target = { ...image!, readBody: true }
const client = new LoadClient()
const versionOf = (shot: Shot) => {
  try { return (JSON.parse(shot.body ?? '') as { model?: { version?: string } }).model?.version } catch { return undefined }
}

async function health (): Promise<{ model?: { version?: string, pending?: { error?: string } } }> {
  return await (await fetch(`${server.url}/health`)).json() as { model?: { version?: string } }
}

let failed = false
try {
  // Capacity: 2 × workers clients back to back.
  await closedLoop(client, 2 * workers, 2000, () => target, () => {})
  let ok = 0
  const t0 = performance.now()
  await closedLoop(client, 2 * workers, CAPACITY_S * 1000, () => target, (s) => { if (s.status === 200) ok++ })
  const capacity = ok / ((performance.now() - t0) / 1000)
  const rate = capacity / 2
  console.log(`capacity: ${f(capacity)} req/s (closed loop, ${2 * workers} clients, ${CAPACITY_S} s); load: ${f(rate)} req/s for ${LOAD_S} s with ${SWAPS} swaps`)

  // 50 % load with SWAPS pushes spread over it.
  const shots: Shot[] = []
  const rss = new RssSampler(server.pid, 50)
  const pushes: Array<{ version: string, at: number }> = []
  const start = performance.now()
  const driver = (async () => {
    for (let i = 1; i <= SWAPS; i++) {
      await sleep(Math.max(0, start + i * LOAD_S * 1000 / (SWAPS + 1) - performance.now()))
      const version = `bench-${i}`
      await pushVersion(version)
      pushes.push({ version, at: performance.now() })
      process.kill(server.pid, 'SIGHUP')
    }
  })()
  const loop = await openLoop(client, rate, LOAD_S * 1000, 8 * workers, () => target, (s) => shots.push(s))
  await driver
  rss.stop()

  const done = (s: Shot) => s.startedAt + s.totalMs
  const windows = pushes.map((p) => {
    const first = Math.min(...shots.filter((s) => versionOf(s) === p.version).map(done))
    return { ...p, first, until: first + SWAP_TAIL_MS }
  })
  const inSwap = (s: Shot) => windows.some((w) => s.startedAt >= w.at && s.startedAt < w.until)
  const swapping = shots.filter(inSwap).map((s) => s.totalMs)
  const steady = shots.filter((s) => !inSwap(s)).map((s) => s.totalMs)
  const non2xx = shots.filter((s) => s.status !== 200)
  // Versions only move forward: an answer from an older version after a newer one answered is a mix-up.
  const order = (v: string | undefined) => Number(v?.replace('bench-', '') ?? -1)
  const backwards = shots.filter((s) => windows.some((w) => s.startedAt > w.first && order(versionOf(s)) < order(w.version))).length
  const rssIn = (from: number, to: number) => Math.max(0, ...rss.samples.filter((x) => x.t >= from && x.t < to).map((x) => x.rss))
  const steadyRss = rss.medianBetween(start, windows[0]?.at ?? Infinity)

  console.log(`\n${loop.sent} requests sent (${loop.skipped} skipped by the client's in-flight bound): ${non2xx.length} non-2xx` +
    (non2xx.length === 0 ? '' : ` (${[...new Set(non2xx.map((s) => s.status))].join(', ')})`) + `; answers from an older version after a newer one: ${backwards}`)
  printTable(['swap', 'push → first answer (ms)', 'peak RSS (MiB)'], windows.map((w) => [w.version, f(w.first - w.at, 0), mib(rssIn(w.at, w.until))]))
  console.log(`p99 latency: steady ${f(percentile(steady, 99), 1)} ms (${steady.length} requests), during swaps ${f(percentile(swapping, 99), 1)} ms ` +
    `(${swapping.length} requests): ×${f(percentile(swapping, 99) / percentile(steady, 99), 2)}; p50 ${f(percentile(steady, 50), 1)} / ${f(percentile(swapping, 50), 1)} ms`)
  console.log(`RSS: steady median ${mib(steadyRss)} MiB, peak during swaps ${mib(Math.max(...windows.map((w) => rssIn(w.at, w.until))))} MiB, peak overall ${mib(rss.peak)} MiB`)
  failed = non2xx.length > 0 || backwards > 0

  // Swaps in a row, no load: does RSS keep growing per session create/release?
  const after: number[] = []
  for (let i = 1; i <= ROW_SWAPS; i++) {
    const version = `row-${i}`
    await pushVersion(version)
    process.kill(server.pid, 'SIGHUP')
    const deadline = Date.now() + 120_000
    while ((await health()).model?.version !== version) {
      if (Date.now() > deadline) throw new Error(`${version} not served after 120 s: ${JSON.stringify(await health())}`)
      await sleep(50)
    }
    // The old pool drains (nothing in flight) and closes; one answer from the new one.
    await sleep(500)
    await client.send(target)
    after.push(rssBytes(server.pid))
  }
  const [second, last] = [after[1]!, after.at(-1)!]
  console.log(`\n${ROW_SWAPS} swaps in a row: RSS after each (MiB) ${after.map(mib).join(' ')}`)
  console.log(`RSS after the ${ROW_SWAPS}th ${mib(last)} MiB vs after the 2nd ${mib(second)} MiB: ${last >= second ? '+' : ''}${f((last / second - 1) * 100, 1)} % ` +
    `(${f((last - second) / (ROW_SWAPS - 2) / 2 ** 20, 2)} MiB per swap)`)
} catch (err) {
  failed = true
  console.error(err)
} finally {
  client.close()
  await stopAndReport(server, failed)
  await s3.close()
  await rm(modelDir, { recursive: true, force: true })
}
