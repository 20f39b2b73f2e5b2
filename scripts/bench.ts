// Benchmark of issues 2 and 11: npm run bench [-- --threads] [-- --cores N]   (not a test; figures go in the README)
// --cores N pins the server to CPUs 0..N-1 with taskset and sets WORKERS=N (the limit is for N cores).
// Each image is sent as multipart and as base64 JSON (BENCH_BODIES=multipart or json: one of them);
// then a burst of BURST_SIZE (64) 12 MP uploads at once against WORKERS=1 (BURST_SIZE=0: none).
// Env: BENCH_DURATION_S (15), BENCH_WARMUP_S (3), BENCH_CONNECTIONS (8), BENCH_THREADS=1 (same as
// --threads), BENCH_IMAGES (e.g. 1600,4032: a subset), BENCH_QUIET_WAIT_S (20: how long each
// measurement may wait for other processes to go idle; 0 = never), MODEL_PATH (./models/demo),
// BENCH_SERVER (the entry to run, dist/server.js: point it at another build to compare a change),
// BENCH_NODE_ARGS (node flags for the server after the Procfile's, e.g. --max-semi-space-size=64). Other variables
// (WORKERS, UV_THREADPOOL_SIZE…) pass through to the server; RATE_LIMIT_MAX defaults to 0 (off).
import os from 'node:os'
import { relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { openBundle } from '../src/models/bundle.js'
import { runBurst } from './bench-burst.js'
import { jsonBody, makeImages, multipartBody, type BenchImage } from './bench-images.js'
import { autocannon } from './bench-load.js'
import { measureLimits, openSession, tensorFor, timeInference, type ImageLimit } from './bench-limit.js'
import { describeExit, envNumber, machineCpu, percentile, pollHealth, processCpuS, processRssMiB, type RunningServer, startServer, waitForQuiet, BENCH_MODEL_PATH, BENCH_ROOT, BENCH_SERVER_ENTRY } from './bench-server.js'


const DURATION_S = envNumber('BENCH_DURATION_S', 15)
const WARMUP_S = envNumber('BENCH_WARMUP_S', 3)
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 8)
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 20)
const HEALTH_INTERVAL_MS = 50
// Server settings worth echoing in the header when they are set in the environment.
const SERVER_ENV_SHOWN = ['WORKERS', 'INTRA_OP_THREADS', 'UV_THREADPOOL_SIZE', 'QUEUE_SIZE', 'RATE_LIMIT_MAX', 'NODE_OPTIONS']
const TARGET_RATIO = 0.90
// The main thread at the 8-core limit (issue 11): at most half busy, or it saturates first.
const TARGET_MAIN_BUSY_8 = 0.5
const PROJECTED_CORES = 8
const TARGET_HEALTH_P99_MS = 20
const LIMIT_BUDGET = { minRuns: 30, minMs: 2000 }
// 0 = no burst, which envNumber (positive numbers) would refuse.
const BURST_SIZE = Number(process.env.BURST_SIZE ?? 64)
if (!(Number.isInteger(BURST_SIZE) && BURST_SIZE >= 0)) throw new Error('BURST_SIZE must be a whole number (0: no burst)')
const BURST_HEALTH_INTERVAL_MS = 10
const TARGET_BURST_HEALTH_MAX_MS = 100
const BODIES = { multipart: multipartBody, json: jsonBody }
type BodyKind = keyof typeof BODIES
const bodyKinds = (process.env.BENCH_BODIES ?? 'multipart,json').split(',').map((w) => w.trim())
for (const kind of bodyKinds) if (!(kind in BODIES)) throw new Error(`BENCH_BODIES: "${kind}" is not one of ${Object.keys(BODIES).join(', ')}`)

/** One load: an image, sent in one of the bodies clients send. */
interface BenchCase {
  name: string
  image: BenchImage
  /** Index of the image, and of its in-process limit. */
  index: number
  kind: BodyKind
}

const { values: flags } = parseArgs({ options: { threads: { type: 'boolean', default: false }, cores: { type: 'string' } } })
const measureThreads = flags.threads || process.env.BENCH_THREADS === '1'
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
const pinned = flags.cores === undefined ? undefined : Number(flags.cores)
if (pinned !== undefined && !(Number.isInteger(pinned) && pinned >= 1 && pinned <= os.availableParallelism())) {
  throw new Error(`--cores must be an integer from 1 to ${os.availableParallelism()} (the cores this machine has)`)
}
const cores = pinned ?? os.availableParallelism()
// The server's CPUs and matching WORKERS when pinned; otherwise the server's own budget.
const cpus = pinned === undefined ? undefined : `0-${pinned - 1}`
const pinnedEnv: Record<string, string> = pinned === undefined ? {} : { WORKERS: String(pinned) }

interface LoadFigures {
  rps: number
  p50: number
  p99: number
  /** Responses other than 2xx, by status. */
  non2xx: Map<number, number>
  errors: number
  healthP99: number
  healthFailures: number
  /** Set when the server was gone by the end of the run (a crash under load or on disconnects). */
  serverEnded: string | undefined
  /** Cores busy during the measured window: the server (and its main thread), this process, everyone else. */
  cpu: { server: number, main: number, bench: number, others: number, steal: number }
  /** The server's resident memory at the end of the window and its peak so far, MiB. */
  rss: { now: number, peak: number }
}

// autocannon drops its connections, requests in flight included, when a run ends: the measured
// window sits inside one continuous run, and the next run waits for the server to drain.
const TAIL_S = 1
const DRAIN_MS = 1000

/** Before each measurement, wait a little for other people's bursts of work to end. */
async function settle (what: string): Promise<void> {
  if (!(QUIET_WAIT_S > 0)) return
  const { waitedMs, quiet } = await waitForQuiet(QUIET_WAIT_S * 1000)
  if (!quiet) console.log(`(the machine was still busy with other processes after ${f(waitedMs / 1000, 0)} s; measuring ${what} anyway)`)
}

/** One continuous load: warm-up, then the measured window with /health polled alongside. */
async function runLoad (server: RunningServer, load: BenchCase): Promise<LoadFigures> {
  await settle(load.name)
  const { body, contentType } = BODIES[load.kind](load.image.bytes)
  const latencies: number[] = []
  const non2xx = new Map<number, number>()
  let errors = 0
  let measuring = false
  const run = autocannon({
    url: `${server.url}/api/v2/analyze/guest`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: WARMUP_S + DURATION_S + TAIL_S,
    headers: { 'content-type': contentType },
    body
  })
    .on('response', (_client, status, _bytes, ms) => {
      if (!measuring) return
      if (status >= 200 && status < 300) latencies.push(ms)
      else non2xx.set(status, (non2xx.get(status) ?? 0) + 1)
    })
    .on('reqError', () => { if (measuring) errors++ })
  await sleep(WARMUP_S * 1000)

  const stop = new AbortController()
  const health = pollHealth(server.url, HEALTH_INTERVAL_MS, stop.signal)
  const [server0, main0, machine0, bench0, t0] =
    [processCpuS(server.pid), processCpuS(server.pid, server.pid), machineCpu(), process.cpuUsage(), performance.now()]
  measuring = true
  await sleep(DURATION_S * 1000)
  measuring = false
  const wallS = (performance.now() - t0) / 1000
  const [server1, main1, machine1, bench1, rss] =
    [processCpuS(server.pid), processCpuS(server.pid, server.pid), machineCpu(), process.cpuUsage(bench0), processRssMiB(server.pid)]
  stop.abort()
  const samples = await health
  await run
  await sleep(DRAIN_MS)
  const exit = server.exit()

  const serverCores = (server1 - server0) / wallS
  const benchCores = (bench1.user + bench1.system) / 1e6 / wallS
  return {
    rps: latencies.length / wallS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    non2xx,
    errors,
    healthP99: percentile(samples.latenciesMs, 99),
    healthFailures: samples.failures,
    serverEnded: exit === undefined ? undefined : describeExit(exit),
    cpu: {
      server: serverCores,
      main: (main1 - main0) / wallS,
      bench: benchCores,
      others: (machine1.busyS - machine0.busyS) / wallS - serverCores - benchCores,
      steal: (machine1.stealS - machine0.stealS) / wallS
    },
    rss: { now: rss.rss, peak: rss.peak }
  }
}

function printTable (headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  console.log(line(headers))
  console.log('|' + widths.map((w, i) => i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `).join('|') + '|')
  for (const row of rows) console.log(line(row))
}

const f = (value: number, digits = 1) => Number.isFinite(value) ? value.toFixed(digits) : '–'
const mark = (ok: boolean) => ok ? '' : ' ✗'

function printMachine (): void {
  const cpuList = os.cpus()
  const pinning = pinned === undefined ? '' : `; server pinned to CPUs ${cpus} with taskset, WORKERS=${pinned}`
  console.log(`machine: ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores (availableParallelism)${pinning}, ` +
    `${f(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`)
  console.log(`versions: sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, concurrency ${sharp.concurrency()}), ` +
    `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}`)
  const server = [relative(BENCH_ROOT, BENCH_SERVER_ENTRY), ...nodeArgs].join(' ')
  const env = SERVER_ENV_SHOWN.filter((k) => process.env[k] !== undefined).map((k) => ` ${k}=${process.env[k]}`).join('')
  console.log(`server: node ${server}${env}${process.env.RATE_LIMIT_MAX === undefined ? ' (RATE_LIMIT_MAX=0)' : ''}`)
  console.log(`load: autocannon ${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${DURATION_S} s per image; ` +
    `/health every ${HEALTH_INTERVAL_MS} ms on its own connection; up to ${QUIET_WAIT_S} s wait for a quiet machine; loadavg ${os.loadavg().map((l) => f(l, 2)).join(' ')}`)
}

async function withServer<T> (env: Record<string, string>, label: string, body: (s: RunningServer) => Promise<T>): Promise<T> {
  // The per-address rate limit (DESIGN.md) would answer most of this one client's requests with 429.
  const rateLimit = { RATE_LIMIT_MAX: process.env.RATE_LIMIT_MAX ?? '0' }
  const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY, { MODEL_PATH: BENCH_MODEL_PATH, ...rateLimit, ...pinnedEnv, ...env }, nodeArgs, cpus)
  try {
    return await body(server)
  } finally {
    const crashed = server.exit() !== undefined
    const exit = await server.stop()
    const clean = !crashed && exit.code === 0
    console.log(`server ${label} (pid ${server.pid}) ${crashed ? 'had already ended' : 'stopped with SIGTERM'}: ` +
      `${describeExit(exit)}${clean ? '' : ' ✗ expected exit code 0'}`)
    for (const line of server.logRepeats()) console.log(`  log: ${line}`)
    if (!clean) process.exitCode = 1
  }
}

/** Runs each load in turn on one server; stops at the first run that leaves the server dead. */
async function loadAll (server: RunningServer, list: BenchCase[]): Promise<Array<LoadFigures | undefined>> {
  const out: Array<LoadFigures | undefined> = list.map(() => undefined)
  for (const [i, load] of list.entries()) {
    out[i] = await runLoad(server, load)
    const ended = out[i]!.serverEnded
    if (ended !== undefined) {
      console.log(`✗ the server ended during or right after the ${load.name} load (${ended}); see its log above`)
      break
    }
  }
  return out
}


printMachine()
const bundle = await openBundle(BENCH_MODEL_PATH)
const spec = bundle.spec
if (spec === undefined) throw new Error(`${BENCH_MODEL_PATH} has no manifest.json; the bench needs the input spec`)
// BENCH_IMAGES=1600,4032 narrows the run to the images whose names contain one of the words.
const only = process.env.BENCH_IMAGES?.split(',').map((w) => w.trim()).filter((w) => w !== '')
const images = (await makeImages()).filter((i) => only === undefined || only.some((w) => i.name.includes(w)))
console.log(`images: ${images.map((i) => `${i.name} ${f(i.bytes.length / 2 ** 20, 2)} MiB`).join(', ')}; bodies: ${bodyKinds.join(', ')}`)
const cases: BenchCase[] = (bodyKinds as BodyKind[]).flatMap((kind) => images.map((image, index) =>
  ({ name: kind === 'multipart' ? image.name : `${image.name} base64 JSON`, image, index, kind })))

console.log('\nin-process limit (median, one thread, sequential):')
await settle('the limit')
const [machine0, self0, t0] = [machineCpu(), process.cpuUsage(), performance.now()]
const limits = await measureLimits(images, spec, bundle.modelFile, cores, LIMIT_BUDGET)
const limitWallS = (performance.now() - t0) / 1000
const selfUsage = process.cpuUsage(self0)
const othersDuringLimit = (machineCpu().busyS - machine0.busyS) / limitWallS - (selfUsage.user + selfUsage.system) / 1e6 / limitWallS
printTable(['image', 'decode+resize+tensor ms', 'inference ms', `limit req/s (${cores} cores)`],
  images.map((img, i) => [img.name, f(limits[i]!.decodeMs, 2), f(limits[i]!.inferMs, 2), f(limits[i]!.limit)]))
console.log(`(other processes kept ${f(othersDuringLimit, 2)} cores busy meanwhile)`)

const ratio = (load: LoadFigures, limit: ImageLimit) => load.rps / limit.limit
// "0", or the count with its statuses: "37 (503×30, socket errors×7)"
const failures = (load: LoadFigures) => {
  const kinds = [...load.non2xx].map(([status, n]) => `${status}×${n}`)
  if (load.errors > 0) kinds.push(`socket errors×${load.errors}`)
  const total = [...load.non2xx.values()].reduce((a, b) => a + b, load.errors)
  return total === 0 ? '0' : `${total} (${kinds.join(', ')})`
}
const loadRow = (name: string, load: LoadFigures | undefined, limit: ImageLimit) => load === undefined
  ? [name, 'not run', '', '', '', f(limit.limit), '', '']
  : [
      name, f(load.rps), f(load.p50, 0), f(load.p99, 0), failures(load), f(limit.limit),
      f(ratio(load, limit), 2) + mark(ratio(load, limit) >= TARGET_RATIO),
      f(load.healthP99) + mark(load.healthP99 <= TARGET_HEALTH_P99_MS && load.healthFailures === 0)
    ]
const LOAD_HEADERS = ['image', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'limit req/s', 'ratio', 'health p99 ms']
// The share of the server's CPU time that was the limit's work (decode + inference): what is left
// is HTTP, multipart, copies, scheduling. Unlike the ratio, it does not depend on what other
// processes took from the server.
const cpuRow = (name: string, load: LoadFigures | undefined, limit: ImageLimit) => load === undefined
  ? [name, '', '', '', '', '', '']
  : [name, f(load.cpu.server, 2), f(load.cpu.main, 2), f(load.cpu.bench, 2), f(load.cpu.others, 2), f(load.cpu.steal, 2),
      f(load.rps * (limit.decodeMs + limit.inferMs) / 1000 / load.cpu.server, 2)]
const CPU_HEADERS = ['image', 'server cores', 'its main thread', 'bench cores', 'other processes', 'steal', 'limit work / server CPU']
// Main-thread CPU per answered request (event-loop work: HTTP, multipart, copies, GC), and what
// it would come to at the in-process limit of an 8-core machine, where the main thread is still one.
const mainMsPerRequest = (load: LoadFigures) => load.cpu.main * 1000 / load.rps
const limitAt = (limit: ImageLimit, n: number) => n * 1000 / (limit.decodeMs + limit.inferMs)
const mainRow = (name: string, load: LoadFigures | undefined, limit: ImageLimit) => {
  if (load === undefined) return [name, '', '', '', '', '']
  const busy = mainMsPerRequest(load) * limitAt(limit, PROJECTED_CORES) / 1000
  return [name, f(mainMsPerRequest(load), 2), f(limitAt(limit, PROJECTED_CORES)), f(busy * 100, 0) + ' %' + mark(busy <= TARGET_MAIN_BUSY_8),
    f(load.rss.now, 0), f(load.rss.peak, 0)]
}
const MAIN_HEADERS = ['image', 'main thread ms/request', `${PROJECTED_CORES}-core limit req/s`, `main thread busy at that rate (≤ ${TARGET_MAIN_BUSY_8 * 100} %)`, 'RSS MiB', 'peak RSS MiB']

console.log(`\nserver under load (targets: ratio ≥ ${TARGET_RATIO}, /health p99 ≤ ${TARGET_HEALTH_P99_MS} ms; ✗ = missed):`)
const loads = await withServer({}, 'default', async (server) => await loadAll(server, cases))
printTable(LOAD_HEADERS, cases.map((c, i) => loadRow(c.name, loads[i], limits[c.index]!)))
console.log('\nCPU during the measured windows (cores busy on average):')
printTable(CPU_HEADERS, cases.map((c, i) => cpuRow(c.name, loads[i], limits[c.index]!)))
console.log(`\nmain thread and memory (projection: measured main-thread ms/request × the ${PROJECTED_CORES}-core limit; ✗ = over target):`)
printTable(MAIN_HEADERS, cases.map((c, i) => mainRow(c.name, loads[i], limits[c.index]!)))

// The largest image, or the last one BENCH_IMAGES left.
const burstImage = images.at(-1)
if (BURST_SIZE > 0 && burstImage !== undefined) {
  console.log(`\nburst: ${BURST_SIZE} × ${burstImage.name} multipart uploads at once, WORKERS=1, /health every ${BURST_HEALTH_INTERVAL_MS} ms from its own thread ` +
    `(targets: only 200/503, /health max ≤ ${TARGET_BURST_HEALTH_MAX_MS} ms):`)
  const { body, contentType } = multipartBody(burstImage.bytes)
  await settle('the burst')
  const burst = await withServer({ WORKERS: '1' }, 'WORKERS=1', async (server) => await runBurst(server.url, body, contentType, BURST_SIZE, BURST_HEALTH_INTERVAL_MS))
  const answers = [...burst.statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status === 0 ? 'socket error' : status}×${n}`).join(', ')
  const onlyExpected = [...burst.statuses.keys()].every((s) => s === 200 || s === 503)
  printTable(['answers', 'all answered in s', '/health samples', '/health p99 ms', '/health max ms', 'server event-loop delay max ms', '/health failures'], [[
    answers + mark(onlyExpected), f(burst.wallMs / 1000, 2), String(burst.health.samples), f(burst.health.p99),
    f(burst.health.max) + mark(burst.health.max <= TARGET_BURST_HEALTH_MAX_MS), f(burst.serverLagMaxMs) + mark(burst.serverLagMaxMs <= TARGET_BURST_HEALTH_MAX_MS),
    String(burst.health.failures) + mark(burst.health.failures === 0)
  ]])
}

if (measureThreads) {
  // The 1600×1200 image, or the first one BENCH_IMAGES left.
  const index = Math.max(0, images.findIndex((i) => i.width === 1600))
  const image = images[index]!
  const configs = [{ workers: cores, threads: 1 }, { workers: 1, threads: cores }]
  console.log(`\nintra-op threads, ${image.name}:`)
  const tensor = await tensorFor(image, spec)
  await settle('single inferences')
  const single: string[][] = []
  for (const { threads } of configs) {
    const session = await openSession(bundle.modelFile, threads)
    single.push([`intraOpNumThreads ${threads}`, f(await timeInference(session, spec, tensor, LIMIT_BUDGET), 2)])
    await session.release()
  }
  printTable(['one inference alone, main thread', 'median ms'], single)
  const rows: string[][] = []
  for (const { workers, threads } of configs) {
    const label = `WORKERS=${workers} INTRA_OP_THREADS=${threads}`
    const [load] = await withServer({ WORKERS: String(workers), INTRA_OP_THREADS: String(threads) }, label,
      async (server) => await loadAll(server, [{ name: image.name, image, index, kind: 'multipart' }]))
    const cpu = cpuRow(label, load, limits[index]!)
    rows.push([...loadRow(label, load, limits[index]!), cpu[1]!, cpu[4]!, cpu[6]!, f(load?.rss.peak ?? Number.NaN, 0)])
  }
  printTable([...LOAD_HEADERS.map((h) => h === 'image' ? 'configuration' : h), 'server cores', 'other processes', 'limit work / server CPU', 'peak RSS MiB'], rows)
  // One session per worker: the extra worker's session (weights, prepacked kernels, arenas).
  const peaks = rows.map((r) => Number(r.at(-1)))
  if (cores > 1) console.log(`RSS per extra worker ≈ (peak ${cores}×1 − peak 1×${cores}) / ${cores - 1} = ${f((peaks[0]! - peaks[1]!) / (cores - 1), 0)} MiB`)
}
