// Soak test of issue 5: npm run soak   (not a test; figures go in the README)
// SOAK_MINUTES (10) at SOAK_LOAD (0.8) × the measured capacity, open-model (a fixed arrival rate),
// with the three bench images mixed 6:3:1 (640×480 : 1600×1200 : 12 MP). Prints a line a minute,
// then: answers by status (target: no non-2xx), RSS in minute 2 and in the last minute (target:
// drift ≤ 10 %), open fds and handles in minute 2 and at the end (target: no growth), and p50/p99
// latency per minute.
// Env: SOAK_MINUTES (10), SOAK_LOAD (0.8), SOAK_CAPACITY_S (15), BENCH_QUIET_WAIT_S (20: wait for
// other processes to go idle before measuring capacity; 0 = never), MODEL_PATH (./models/demo),
// BENCH_SERVER (dist/server.js). Other variables (WORKERS, LD_PRELOAD…) pass through to the
// server; RATE_LIMIT_MAX is 0 unless set.
import { makeImages } from './bench-images.js'
import {
  LoadClient, RssSampler, closedLoop, f, fdCount, mark, mib, openLoop, printMachine, printTable, rssBytes, scrape, targetsFor,
  type FdCount, type Shot
} from './bench-load.js'
import { describeExit, stopAndReport, envNumber, machineCpu, percentile, processCpuS, startServer, waitForQuiet, BENCH_MODEL_PATH, BENCH_ROOT, BENCH_SERVER_ENTRY } from './bench-server.js'

const MINUTES = envNumber('SOAK_MINUTES', 10)
const LOAD = envNumber('SOAK_LOAD', 0.8)
const CAPACITY_S = envNumber('SOAK_CAPACITY_S', 15)
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 20)
const CAPACITY_WARMUP_S = 3
// Far above what 80 % of capacity keeps open; reaching it means the server fell behind.
const MAX_IN_FLIGHT = 64
const TARGET = { rssDriftPct: 10 }
// Weighted towards the small images: 6 × 640×480, 3 × 1600×1200, 1 × 12 MP in every ten, spread out.
const MIX = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0]
// RSS "at minute N" is the median of the samples taken during minute N.
const BASE_MINUTE = 2



interface Minute {
  n: number
  answers: Shot[]
  rssMedian: number
  rssMax: number
  fd: FdCount
  clientSockets: number
  handles: number
  heapUsed: number
  external: number
  serverCores: number
  otherCores: number
}

printMachine()
const images = await makeImages()
const share = images.map((_, i) => MIX.filter((m) => m === i).length / MIX.length)
console.log(`images: ${images.map((img, i) => `${img.name} ${f(img.bytes.length / 2 ** 20, 2)} MiB × ${f(share[i]! * 100, 0)} %`).join(', ')}`)
if (QUIET_WAIT_S > 0) {
  const { waitedMs, quiet } = await waitForQuiet(QUIET_WAIT_S * 1000)
  if (!quiet) console.log(`(the machine was still busy with other processes after ${f(waitedMs / 1000, 0)} s; measuring anyway)`)
}
const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY, { MODEL_PATH: BENCH_MODEL_PATH, RATE_LIMIT_MAX: process.env.RATE_LIMIT_MAX ?? '0' })
let failed = false
try {
  const health = await (await fetch(`${server.url}/health`)).json() as { workers: number }
  const workers = health.workers
  console.log(`server pid ${server.pid}: ${workers} workers; RSS after boot ${mib(rssBytes(server.pid))} MiB`)
  const targets = targetsFor(server.url, images)
  const next = (i: number) => targets[MIX[i % MIX.length]!]!

  // Capacity with the same mix: a closed loop of 2 × WORKERS clients (each waits for its answer,
  // so no request is ever abandoned mid-inference).
  const client = new LoadClient()
  const connections = 2 * workers
  await closedLoop(client, connections, CAPACITY_WARMUP_S * 1000, next, () => {})
  const capShots: Shot[] = []
  const [c0, server0, machine0, bench0] = [performance.now(), processCpuS(server.pid), machineCpu().busyS, process.cpuUsage()]
  await closedLoop(client, connections, CAPACITY_S * 1000, next, (s) => capShots.push(s))
  const capS = (performance.now() - c0) / 1000
  const capServer = (processCpuS(server.pid) - server0) / capS
  const capBench = process.cpuUsage(bench0)
  const capOthers = (machineCpu().busyS - machine0) / capS - capServer - (capBench.user + capBench.system) / 1e6 / capS
  const capOk = capShots.filter((s) => s.status >= 200 && s.status < 300)
  const capacity = capOk.length / capS
  console.log(`capacity with the mix (${connections} clients back to back, ${f(capS)} s after ${CAPACITY_WARMUP_S} s warm-up): ` +
    `${f(capacity)} req/s, p50 ${f(percentile(capOk.map((s) => s.totalMs), 50), 0)} ms, p99 ${f(percentile(capOk.map((s) => s.totalMs), 99), 0)} ms, ` +
    `non-2xx ${capShots.length - capOk.length}; server ${f(capServer, 2)} cores, other processes ${f(capOthers, 2)} cores meanwhile`)
  if (!(capacity > 0)) throw new Error('no request succeeded while measuring capacity')

  const rate = LOAD * capacity
  console.log(`\nsoak: ${f(rate)} req/s (${f(LOAD * 100, 0)} % of ${f(capacity)}) for ${MINUTES} min\n`)
  const header = ['min', 'sent', '2xx', 'non-2xx', 'p50 ms', 'p99 ms', 'RSS MiB (median/max)', 'fds (sockets)', 'client sockets', 'handles', 'heap/ext MiB', 'server cores', 'other procs cores']
  console.log(header.join(' | '))

  const sampler = new RssSampler(server.pid, 1000)
  const minutes: Minute[] = []
  let current: Shot[] = []
  let sentThisMinute = 0
  const sentPerMinute: number[] = []
  const all: Shot[] = []
  const start = performance.now()
  let cpuMark = { server: processCpuS(server.pid), machine: machineCpu().busyS, bench: process.cpuUsage(), t: start }
  const row = (m: Minute, sent: number) => {
    const ok = m.answers.filter((s) => s.status >= 200 && s.status < 300)
    const ms = ok.map((s) => s.totalMs)
    return [String(m.n), String(sent), String(ok.length), String(m.answers.length - ok.length), f(percentile(ms, 50), 0), f(percentile(ms, 99), 0),
      `${mib(m.rssMedian)}/${mib(m.rssMax)}`, `${m.fd.total} (${m.fd.sockets})`, String(m.clientSockets), String(m.handles),
      `${mib(m.heapUsed)}/${mib(m.external)}`, f(m.serverCores, 2), f(m.otherCores, 2)]
  }
  // A line at the end of each minute: the answers that arrived during it.
  const closeMinute = async (n: number) => {
    const answers = current
    current = []
    const sent = sentThisMinute
    sentThisMinute = 0
    sentPerMinute.push(sent)
    const now = performance.now()
    const inMinute = sampler.samples.filter((s) => s.t >= start + (n - 1) * 60_000 && s.t < now).map((s) => s.rss).sort((a, b) => a - b)
    const metrics = await scrape(server.url).catch(() => new Map<string, number>())
    const cpu = { server: processCpuS(server.pid), machine: machineCpu().busyS, bench: process.cpuUsage(), t: performance.now() }
    const wallS = (cpu.t - cpuMark.t) / 1000
    const serverCores = (cpu.server - cpuMark.server) / wallS
    const benchUsage = process.cpuUsage(cpuMark.bench)
    const otherCores = (cpu.machine - cpuMark.machine) / wallS - serverCores - (benchUsage.user + benchUsage.system) / 1e6 / wallS
    cpuMark = cpu
    const m: Minute = {
      n, answers,
      rssMedian: inMinute.length === 0 ? Number.NaN : inMinute[inMinute.length >> 1]!,
      rssMax: inMinute.length === 0 ? Number.NaN : inMinute[inMinute.length - 1]!,
      fd: fdCount(server.pid),
      clientSockets: client.sockets,
      handles: metrics.get('nodejs_active_handles_total') ?? Number.NaN,
      heapUsed: metrics.get('nodejs_heap_size_used_bytes') ?? Number.NaN,
      external: metrics.get('nodejs_external_memory_bytes') ?? Number.NaN,
      serverCores,
      otherCores
    }
    minutes.push(m)
    console.log(row(m, sent).join(' | '))
  }
  const durationMs = MINUTES * 60_000
  let closing = Promise.resolve()
  const ticker = setInterval(() => {
    const n = minutes.length + 1
    closing = closing.then(async () => { if (server.exit() === undefined) await closeMinute(n) })
  }, 60_000)
  const sent = await openLoop(client, rate, durationMs, MAX_IN_FLIGHT, (i) => {
    sentThisMinute++
    return next(i)
  }, (s) => { current.push(s); all.push(s) })
  clearInterval(ticker)
  await closing
  // Answers that arrived after the last full minute (the tail of the schedule) join the last line.
  if (current.length > 0 && minutes.length > 0) {
    minutes.at(-1)!.answers.push(...current)
    current = []
  }
  if (minutes.length < Math.ceil(MINUTES)) await closeMinute(minutes.length + 1)
  const fdEnd = fdCount(server.pid)
  const clientEnd = client.sockets
  const metricsEnd = await scrape(server.url).catch(() => new Map<string, number>())
  sampler.stop()
  client.close()

  // Summary.
  const byStatus = new Map<string, number>()
  for (const s of all) {
    const key = s.status === 0 ? `error ${s.error ?? '?'}` : String(s.status)
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1)
  }
  const non2xx = all.filter((s) => !(s.status >= 200 && s.status < 300)).length
  console.log(`\nsent ${sent.sent} of ${sent.due} due (${sent.skipped} not sent: ${MAX_IN_FLIGHT} already open); answers by status:`)
  printTable(['answer', 'count'], [...byStatus].sort().map(([k, n]) => [k, String(n)]))
  const perImage = images.map((img, i) => {
    const ms = all.filter((s) => s.image === i && s.status === 200).map((s) => s.totalMs)
    return [img.name, String(ms.length), f(percentile(ms, 50), 0), f(percentile(ms, 99), 0)]
  })
  console.log('latency by image (whole soak, 200s):')
  printTable(['image', 'count', 'p50 ms', 'p99 ms'], perImage)

  const base = minutes.find((m) => m.n === BASE_MINUTE) ?? minutes[0]!
  const last = minutes.at(-1)!
  const drift = (last.rssMedian - base.rssMedian) / base.rssMedian * 100
  // Sockets on the server are mostly this client's keep-alive connections; what is left is the
  // server's own (listening socket, worker channels, files, epoll…).
  const own = (fd: FdCount, clientSockets: number) => fd.total - clientSockets
  const ownBase = own(base.fd, base.clientSockets)
  const ownEnd = own(fdEnd, clientEnd)
  const handlesEnd = metricsEnd.get('nodejs_active_handles_total') ?? Number.NaN
  console.log(`\nRSS (median of the minute): minute ${base.n} ${mib(base.rssMedian)} MiB, minute ${last.n} ${mib(last.rssMedian)} MiB → drift ${drift >= 0 ? '+' : ''}${f(drift)} %; ` +
    `highest sample ${mib(sampler.peak)} MiB`)
  console.log(`open fds: minute ${base.n} ${base.fd.total} (${base.fd.sockets} sockets, ${base.clientSockets} of them this client's connections), ` +
    `end ${fdEnd.total} (${fdEnd.sockets} sockets, ${clientEnd} client connections); the server's own: ${ownBase} → ${ownEnd}; ` +
    `active handles (prom-client) ${base.handles} → ${handlesEnd}`)
  const exit = server.exit()
  const rows = [
    ['no non-2xx answers', `${non2xx} of ${all.length}`, non2xx === 0],
    [`RSS drift minute ${base.n} → ${last.n} ≤ ${TARGET.rssDriftPct} %`, `${drift >= 0 ? '+' : ''}${f(drift)} %`, Math.abs(drift) <= TARGET.rssDriftPct],
    ['no growth in open fds (the server\'s own)', `${ownBase} → ${ownEnd}`, ownEnd <= ownBase],
    ['no growth in active handles (less client connections)', `${base.handles - base.clientSockets} → ${handlesEnd - clientEnd}`,
      handlesEnd - clientEnd <= base.handles - base.clientSockets],
    ['server alive', exit === undefined ? 'yes' : describeExit(exit), exit === undefined]
  ] as const
  console.log('\ntargets:')
  printTable(['target', 'measured', 'met'], rows.map(([t, m, ok]) => [t, m, mark(ok)]))
  if (!rows.every((r) => r[2])) process.exitCode = 1
} catch (err) {
  failed = true
  console.error(err)
} finally {
  await stopAndReport(server, failed)
}
