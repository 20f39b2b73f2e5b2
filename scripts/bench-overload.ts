// Overload benchmark of issue 5: npm run bench:overload   (not a test; figures go in the README)
// Measures capacity (autocannon, 2 × WORKERS connections, 1600×1200), then offers OVERLOAD_FACTOR
// (4) × that as an open-model load (a fixed arrival rate, whatever the answers) for OVERLOAD_S
// (25) s, and reports the share of 200/503, latencies, /health under saturation, and the server's
// RSS before, at peak and after the load.
// Env: OVERLOAD_S (25), OVERLOAD_FACTOR (4), OVERLOAD_ROUNDS (1: more rounds show whether RSS
// keeps climbing or plateaus), CAPACITY_S (8), SETTLE_AFTER_S (20), BENCH_QUIET_WAIT_S (20: wait
// for other processes to go idle before measuring; 0 = never), OVERLOAD_DUMP (a file to write
// every request's timings to, JSON), MODEL_PATH (./models/demo), BENCH_SERVER (dist/server.js).
// OVERLOAD_REFUSALS=1 (then also: the refusal path alone, on a second server whose every slot is
// held by a stalled upload, so no analysis work competes: 503 latency and main-thread CPU per 503
// for each image size). BENCH_RENICE (a what-if, off by default: a nice value, e.g. 10, given to every server thread
// but the main one, reapplied every 500 ms, so the event loop wins the CPU from the server's own
// decode and inference threads). Other variables (WORKERS, QUEUE_SIZE, LD_PRELOAD…) pass through to the server; RATE_LIMIT_MAX
// is 0 unless set.
import { readdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeImages, multipartBody, type BenchImage } from './bench-images.js'
import {
  LoadClient, RssSampler, autocannon, clientLag, closedLoop, f, fdCount, mark, metricSum, mib, openLoop, printMachine, printTable, printThreadGroups,
  rssBytes, scrape, targetsFor, threadGroups, threadStats, type Shot
} from './bench-load.js'
import { describeExit, stopAndReport, machineCpu, percentile, pollHealth, processCpuS, startServer, waitForQuiet, type RunningServer, BENCH_MODEL_PATH, BENCH_ROOT, BENCH_SERVER_ENTRY } from './bench-server.js'


const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`)
  return value
}
const OVERLOAD_S = envNumber('OVERLOAD_S', 25)
const FACTOR = envNumber('OVERLOAD_FACTOR', 4)
const ROUNDS = Math.max(1, Math.floor(envNumber('OVERLOAD_ROUNDS', 1)))
const CAPACITY_S = envNumber('CAPACITY_S', 8)
const SETTLE_AFTER_S = envNumber('SETTLE_AFTER_S', 20)
const QUIET_WAIT_S = envNumber('BENCH_QUIET_WAIT_S', 20)
const RENICE = process.env.BENCH_RENICE === undefined ? undefined : envNumber('BENCH_RENICE', 0)
const CAPACITY_WARMUP_S = 2
const HEALTH_INTERVAL_MS = 50
// Requests the open loop may have open at once; far above WORKERS + QUEUE_SIZE + the 503s on the
// way. Reaching it means answers are slow to come back, and the schedule's excess is counted.
const MAX_IN_FLIGHT = 256
const TARGET = { rejectP99Ms: 5, healthP99Ms: 20, rssReturnPct: 10 }
// The RSS compared with the one before the load, seconds after it stopped.
const RSS_AFTER_S = Math.min(15, SETTLE_AFTER_S)



async function settle (what: string): Promise<void> {
  if (!(QUIET_WAIT_S > 0)) return
  const { waitedMs, quiet } = await waitForQuiet(QUIET_WAIT_S * 1000)
  if (!quiet) console.log(`(the machine was still busy with other processes after ${f(waitedMs / 1000, 0)} s; measuring ${what} anyway)`)
}

/** Cores busy on average between two snapshots: the server, this process, everyone else. */
function cpuSnapshot (pid: number) {
  return { server: processCpuS(pid), main: processCpuS(pid, pid), machine: machineCpu(), bench: process.cpuUsage(), t: performance.now() }
}
function cpuSince (pid: number, s0: ReturnType<typeof cpuSnapshot>) {
  const wallS = (performance.now() - s0.t) / 1000
  const server = (processCpuS(pid) - s0.server) / wallS
  const b = process.cpuUsage(s0.bench)
  const bench = (b.user + b.system) / 1e6 / wallS
  const m = machineCpu()
  return {
    server, main: (processCpuS(pid, pid) - s0.main) / wallS, bench,
    others: (m.busyS - s0.machine.busyS) / wallS - server - bench, steal: (m.stealS - s0.machine.stealS) / wallS
  }
}
const cpuLine = (c: ReturnType<typeof cpuSince>) =>
  `server ${f(c.server, 2)} (its main thread ${f(c.main, 2)}), bench ${f(c.bench, 2)}, other processes ${f(c.others, 2)}, steal ${f(c.steal, 2)}`

const heapLine = (m: Map<string, number>) => `V8 heap used ${mib(m.get('nodejs_heap_size_used_bytes') ?? Number.NaN)} ` +
  `/ total ${mib(m.get('nodejs_heap_size_total_bytes') ?? Number.NaN)}, external ${mib(m.get('nodejs_external_memory_bytes') ?? Number.NaN)} MiB`

/** Closed loop with autocannon, 2 × WORKERS connections: 200s per second. */
async function measureCapacity (server: RunningServer, workers: number, body: Buffer, contentType: string): Promise<number> {
  // autocannon's `duration` ends a run by dropping the requests in flight, and (onnxruntime-node
  // 1.30 + Piscina) a client that disconnects while its inference runs has that worker
  // terminated mid-run, which can abort the whole server (SIGABRT, Napi::Error). So runs are
  // fixed `amount`s, which let every connection finish its last request, repeated for the time.
  const connections = 2 * workers
  const chunk = connections * 25
  const latencies: number[] = []
  let ok = 0
  let other = 0
  const fixedRun = async (amount: number, record: boolean) => {
    await autocannon({
      url: `${server.url}/api/v2/analyze/guest`, method: 'POST', connections, amount, headers: { 'content-type': contentType }, body
    }).on('response', (_c, status, _b, ms) => {
      if (!record) return
      if (status === 200) { ok++; latencies.push(ms) } else other++
    })
  }
  const w0 = performance.now()
  let warm = 0
  while (performance.now() - w0 < CAPACITY_WARMUP_S * 1000) {
    await fixedRun(connections * 4, false)
    warm += connections * 4
  }
  const cpu0 = cpuSnapshot(server.pid)
  const t0 = performance.now()
  let sent = 0
  while (performance.now() - t0 < CAPACITY_S * 1000) {
    await fixedRun(chunk, true)
    sent += chunk
  }
  const wallS = (performance.now() - t0) / 1000
  const cpu = cpuSince(server.pid, cpu0)
  const capacity = ok / wallS
  console.log(`\ncapacity (autocannon, ${connections} connections, ${sent} requests in ${f(wallS)} s after ${warm} warm-up requests): ` +
    `${f(capacity)} req/s, p50 ${f(percentile(latencies, 50), 0)} ms, p99 ${f(percentile(latencies, 99), 0)} ms, non-200 ${other}`)
  console.log(`  CPU (cores): ${cpuLine(cpu)}`)
  return capacity
}

interface RoundResult { ok: boolean, rssBefore: number, peak: number, rssAfter: number }

async function overloadRound (server: RunningServer, round: number, capacity: number, image: ReturnType<typeof targetsFor>[number]): Promise<RoundResult> {
  // Before: idle, RSS as the median of 3 s of samples.
  await settle('the overload')
  const sampler = new RssSampler(server.pid, 100)
  await sleep(3000)
  const rssBefore = sampler.medianBetween(performance.now() - 3000, performance.now())
  const fdBefore = fdCount(server.pid)
  const metricsBefore = await scrape(server.url)

  // The overload: a fixed arrival rate of FACTOR × capacity.
  const rate = FACTOR * capacity
  const client = new LoadClient()
  const shots: Shot[] = []
  let peakFd = fdBefore
  let peakInFlight = 0
  const fdTimer = setInterval(() => {
    const now = fdCount(server.pid)
    if (now.total > peakFd.total) peakFd = now
    peakInFlight = Math.max(peakInFlight, client.inFlight)
  }, 250)
  const stopHealth = new AbortController()
  const healthSamples = pollHealth(server.url, HEALTH_INTERVAL_MS, stopHealth.signal)
  const lag = clientLag()
  const cpu0 = cpuSnapshot(server.pid)
  const [threads0, benchThreads0] = [threadStats(server.pid), threadStats(process.pid)]
  const loadStart = performance.now()
  console.log(`\n${ROUNDS > 1 ? `round ${round}: ` : ''}overload: ${f(rate)} req/s offered (${FACTOR} × ${f(capacity)}) for ${OVERLOAD_S} s…`)
  const sent = await openLoop(client, rate, OVERLOAD_S * 1000, MAX_IN_FLIGHT, () => image, (s) => shots.push(s))
  const loadEnd = performance.now()
  const loadS = (loadEnd - loadStart) / 1000
  const cpu = cpuSince(server.pid, cpu0)
  const [threads1, benchThreads1] = [threadStats(server.pid), threadStats(process.pid)]
  const benchLag = lag.stop()
  stopHealth.abort()
  const health = await healthSamples
  clearInterval(fdTimer)
  const peak = sampler.peak
  const metricsLoad = await scrape(server.url)

  // After: RSS every 5 s until SETTLE_AFTER_S.
  client.close()
  const after: Array<{ s: number, rss: number }> = []
  for (let s = 5; s <= SETTLE_AFTER_S; s += 5) {
    await sleep(Math.max(0, loadEnd + s * 1000 - performance.now()))
    after.push({ s, rss: sampler.medianBetween(performance.now() - 1000, performance.now() + 1) })
  }
  sampler.stop()
  const fdAfter = fdCount(server.pid)
  const metricsAfter = await scrape(server.url)

  // Figures.
  const byStatus = new Map<string, number>()
  for (const s of shots) {
    const key = s.status === 0 ? `error ${s.error ?? '?'}` : String(s.status)
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1)
  }
  const oks = shots.filter((s) => s.status === 200)
  const okMs = oks.map((s) => s.totalMs)
  const rejects = shots.filter((s) => s.status === 503)
  const rejectMs = rejects.map((s) => s.headersMs)
  const rejectP99 = percentile(rejectMs, 99)
  const healthP99 = percentile(health.latenciesMs, 99)
  const rssAfter = after.find((a) => a.s === RSS_AFTER_S)?.rss ?? after.at(-1)?.rss ?? Number.NaN
  const rssDelta = (rssAfter - rssBefore) / rssBefore * 100

  console.log(`sent ${sent.sent} of ${sent.due} due (${sent.skipped} not sent: ${MAX_IN_FLIGHT} already open) in ${f(loadS)} s ` +
    `= ${f(sent.sent / loadS)} req/s; most open at once ${peakInFlight}; errors after an answer had arrived: ${client.lateErrors}`)
  printTable(['answer', 'count', 'share'], [...byStatus].sort().map(([k, n]) => [k, String(n), `${f(n / shots.length * 100)} %`]))
  console.log(`200s: ${f(oks.length / loadS)} req/s (capacity ${f(capacity)}), latency p50 ${f(percentile(okMs, 50), 0)} ms, ` +
    `p99 ${f(percentile(okMs, 99), 0)} ms, max ${f(Math.max(...okMs), 0)} ms`)
  console.log(`503s: request start to the answer's headers p50 ${f(percentile(rejectMs, 50), 2)} ms, p99 ${f(rejectP99, 2)} ms, ` +
    `max ${f(Math.max(...rejectMs), 1)} ms`)
  const key503 = ['route="/api/v2/analyze/guest"', 'status="503"']
  const delta = (name: string, ...parts: string[]) => metricSum(metricsLoad, name, ...parts) - metricSum(metricsBefore, name, ...parts)
  const count503 = delta('http_request_duration_seconds_count', ...key503)
  const within = (le: string) => delta('http_request_duration_seconds_bucket', ...key503, `le="${le}"`) / count503 * 100
  console.log(`  server side (reply.elapsedTime in /metrics): ${count503} 503s, ${f(within('0.001'))} % ≤ 1 ms, ` +
    `${f(within('0.0025'))} % ≤ 2.5 ms, ${f(within('0.005'))} % ≤ 5 ms, ${f(within('0.025'))} % ≤ 25 ms; ` +
    `shine_rejections_total{overloaded} +${delta('shine_rejections_total', 'overloaded')}`)
  const connects = shots.map((s) => s.connectMs).filter((v) => Number.isFinite(v))
  console.log(`  new connections ${connects.length} (every 503 closes its connection): connect time as this process saw it p50 ` +
    `${f(percentile(connects, 50), 2)} ms, p99 ${f(percentile(connects, 99), 2)} ms`)
  const timeline: string[][] = []
  for (let w = 0; w * 5000 < loadEnd - loadStart; w++) {
    const inWindow = shots.filter((s) => s.startedAt - loadStart >= w * 5000 && s.startedAt - loadStart < (w + 1) * 5000)
    const rj = inWindow.filter((s) => s.status === 503).map((s) => s.headersMs)
    const okW = inWindow.filter((s) => s.status === 200).map((s) => s.totalMs)
    if (inWindow.length > 0) {
      timeline.push([`${w * 5}–${w * 5 + 5} s`, String(inWindow.length), String(okW.length), String(rj.length),
        f(percentile(okW, 99), 0), f(percentile(rj, 50), 2), f(percentile(rj, 99), 2)])
    }
  }
  printTable(['sent in', 'sent', '200', '503', '200 p99 ms', '503 p50 ms', '503 p99 ms'], timeline)
  if (process.env.OVERLOAD_DUMP !== undefined) {
    writeFileSync(`${process.env.OVERLOAD_DUMP}${ROUNDS > 1 ? `.${round}` : ''}`,
      JSON.stringify(shots.map((s) => ({ ...s, startedAt: s.startedAt - loadStart }))))
  }
  console.log(`/health during the load: ${health.latenciesMs.length} polls, p50 ${f(percentile(health.latenciesMs, 50), 2)} ms, ` +
    `p99 ${f(healthP99, 2)} ms, max ${f(Math.max(...health.latenciesMs), 1)} ms, failures ${health.failures}`)
  console.log(`event-loop delay p99: server ${f((metricsLoad.get('nodejs_eventloop_lag_p99_seconds') ?? Number.NaN) * 1000, 1)} ms ` +
    `(max ${f((metricsLoad.get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000, 1)}), ` +
    `this bench ${f(benchLag.p99Ms, 1)} ms (max ${f(benchLag.maxMs, 1)})`)
  console.log(`CPU during the load (cores): ${cpuLine(cpu)}`)
  console.log('server threads during the load:')
  printThreadGroups(threadGroups(server.pid, threads0, threads1, loadS))
  const benchMain = threadGroups(process.pid, benchThreads0, benchThreads1, loadS).find((g) => g.name === 'main')
  console.log(`this bench's main thread: ${f(benchMain?.cores ?? Number.NaN, 2)} cores, waiting for a CPU ${f(benchMain?.waitPerS ?? Number.NaN, 0)} ms/s ` +
    `(${f(benchMain?.waitPerSliceMs ?? Number.NaN, 2)} ms per run)`)
  console.log(`memory (MiB): RSS before the load ${mib(rssBefore)} (${heapLine(metricsBefore)}); peak ${mib(peak)}; ` +
    `end of load: ${heapLine(metricsLoad)}`)
  console.log(`  RSS after the load: ${after.map((a) => `+${a.s} s ${mib(a.rss)}`).join(', ')}; ${heapLine(metricsAfter)}`)
  console.log(`fds: before ${fdBefore.total} (${fdBefore.sockets} sockets), peak ${peakFd.total} (${peakFd.sockets}), ` +
    `${SETTLE_AFTER_S} s after ${fdAfter.total} (${fdAfter.sockets})`)

  const exit = server.exit()
  const others = [...byStatus.keys()].filter((k) => k !== '200' && k !== '503')
  const rows = [
    ['only 200 and 503 answers', others.length === 0 ? 'yes' : others.join(', '), others.length === 0],
    [`503 answered, p99 ≤ ${TARGET.rejectP99Ms} ms`, `${f(rejectP99, 2)} ms`, rejectP99 <= TARGET.rejectP99Ms],
    [`/health p99 ≤ ${TARGET.healthP99Ms} ms`, `${f(healthP99, 2)} ms`, healthP99 <= TARGET.healthP99Ms && health.failures === 0],
    [`RSS +${RSS_AFTER_S} s after within ${TARGET.rssReturnPct} % of before`,
      `${mib(rssAfter)} vs ${mib(rssBefore)} MiB (${rssDelta >= 0 ? '+' : ''}${f(rssDelta)} %)`, Math.abs(rssDelta) <= TARGET.rssReturnPct],
    ['server alive', exit === undefined ? 'yes' : describeExit(exit), exit === undefined]
  ] as const
  console.log(`\ntargets${ROUNDS > 1 ? `, round ${round}` : ''}:`)
  printTable(['target', 'measured', 'met'], rows.map(([t, m, ok]) => [t, m, mark(ok)]))
  return { ok: rows.every((r) => r[2]), rssBefore, peak, rssAfter }
}

/**
 * The refusal path alone: a server with WORKERS=1 QUEUE_SIZE=1 whose two slots are held by
 * uploads that stall after their first KB (freed by UPLOAD_STALL_TIMEOUT_S, 30 s, after this
 * ends), so every request gets 503 and no decode or inference runs: what a 503 costs.
 */
async function refusalPath (images: BenchImage[]): Promise<void> {
  const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY, { MODEL_PATH: BENCH_MODEL_PATH, RATE_LIMIT_MAX: '0', WORKERS: '1', QUEUE_SIZE: '1' })
  const holders: Array<ReturnType<typeof request>> = []
  try {
    const { body, contentType } = multipartBody(images[0]!.bytes)
    for (let i = 0; i < 2; i++) {
      const req = request(`${server.url}/api/v2/analyze/guest`, {
        method: 'POST', headers: { 'content-type': contentType, 'content-length': String(body.length) }
      }, (res) => res.resume())
      req.on('error', () => {})
      req.write(body.subarray(0, 1024))
      holders.push(req)
    }
    await sleep(500)
    const connections = 4
    console.log(`
the refusal path alone (WORKERS=1 QUEUE_SIZE=1, both slots held by stalled uploads; ${connections} clients back to back, 4 s per image):`)
    const rows: string[][] = []
    for (const img of images) {
      const [target] = targetsFor(server.url, [img])
      const client = new LoadClient()
      const ms: number[] = []
      const other = new Map<string, number>()
      const [main0, t0] = [processCpuS(server.pid, server.pid), performance.now()]
      const threads0 = threadStats(server.pid)
      await closedLoop(client, connections, 4000, () => target!, (s) => {
        if (s.status === 503) ms.push(s.headersMs)
        else other.set(s.status === 0 ? s.error ?? '?' : String(s.status), (other.get(s.status === 0 ? s.error ?? '?' : String(s.status)) ?? 0) + 1)
      })
      const wallS = (performance.now() - t0) / 1000
      const main = threadGroups(server.pid, threads0, threadStats(server.pid), wallS).find((g) => g.name === 'main')
      const mainCpuS = processCpuS(server.pid, server.pid) - main0
      client.close()
      rows.push([`${img.name} (${f(img.bytes.length / 2 ** 20, 2)} MiB)`, f(ms.length / wallS, 0), f(percentile(ms, 50), 2), f(percentile(ms, 99), 2),
        f(mainCpuS * 1000 / ms.length, 2), f(main?.waitPerS ?? Number.NaN, 0),
        other.size === 0 ? '0' : [...other].map(([k, n]) => `${n} ${k}`).join(', '), String(client.lateErrors)])
    }
    printTable(['upload', '503/s', 'p50 ms', 'p99 ms', 'main-thread CPU per 503, ms', 'main thread waiting for a CPU, ms/s',
      'not a 503 (client saw)', 'error after the 503'], rows)
  } finally {
    for (const h of holders) h.destroy()
    const exit = await server.stop()
    console.log(`refusal-path server (pid ${server.pid}) stopped: ${describeExit(exit)}`)
  }
}

printMachine()
const images = await makeImages()
const image = images.find((i) => i.width === 1600)!
console.log(`image: ${image.name}, ${f(image.bytes.length / 2 ** 20, 2)} MiB; open-model load ${FACTOR}× capacity for ${OVERLOAD_S} s` +
  `${ROUNDS > 1 ? ` × ${ROUNDS} rounds` : ''}; /health every ${HEALTH_INTERVAL_MS} ms on its own connection` +
  `${process.env.LD_PRELOAD === undefined ? '' : `; server LD_PRELOAD=${process.env.LD_PRELOAD}`}` +
  `${RENICE === undefined ? '' : `; every server thread but the main one reniced to ${RENICE}`}`)

await settle('capacity')
const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY, { MODEL_PATH: BENCH_MODEL_PATH, RATE_LIMIT_MAX: process.env.RATE_LIMIT_MAX ?? '0' })
let failed = false
try {
  if (RENICE !== undefined) {
    // Linux: a thread id is a process id to setpriority(2), which then applies to that thread only.
    const renice = () => {
      try {
        for (const tid of readdirSync(`/proc/${server.pid}/task`).map(Number)) {
          if (tid !== server.pid) try { os.setPriority(tid, RENICE) } catch {}
        }
      } catch {}
    }
    renice()
    setInterval(renice, 500).unref()
  }
  const health = await (await fetch(`${server.url}/health`)).json() as { workers: number }
  const workers = health.workers
  const fdBoot = fdCount(server.pid)
  console.log(`server pid ${server.pid}: ${workers} workers, QUEUE_SIZE ${process.env.QUEUE_SIZE ?? `${8 * workers} (default)`}, ` +
    `admits ${workers + Number(process.env.QUEUE_SIZE ?? 8 * workers)} analyses; RSS after boot ${mib(rssBytes(server.pid))} MiB, ` +
    `${fdBoot.total} fds (${fdBoot.sockets} sockets)`)
  const { body, contentType } = multipartBody(image.bytes)
  const capacity = await measureCapacity(server, workers, body, contentType)
  if (!(capacity > 0)) throw new Error('no request succeeded while measuring capacity')
  await sleep(2000)
  const [target] = targetsFor(server.url, [image])
  const results: RoundResult[] = []
  for (let round = 1; round <= ROUNDS && server.exit() === undefined; round++) {
    results.push(await overloadRound(server, round, capacity, target!))
  }
  if (ROUNDS > 1) {
    console.log(`\nRSS by round (MiB): ${results.map((r, i) => `#${i + 1} before ${mib(r.rssBefore)} → peak ${mib(r.peak)} → after ${mib(r.rssAfter)}`).join('; ')}`)
  }
  if (!results.every((r) => r.ok)) process.exitCode = 1
} catch (err) {
  failed = true
  console.error(err)
} finally {
  await stopAndReport(server, failed)
}
if (process.env.OVERLOAD_REFUSALS === '1') await refusalPath(images)
