// Benchmark of BACKGROUND_NICE (issue 11): npm run bench:nice   (not a test; figures go in the README)
// One server (BACKGROUND_NICE=0, pinned to the first NICE_CORES (2) CPUs with WORKERS to match)
// under one continuous autocannon load; the measured windows alternate between every thread but
// the main one at nice 0 and at NICE (10), so slow drifts in other people's load fall on both
// sides alike. Per window: req/s, /health p50/p99/max, and the main thread's time spent runnable
// but waiting for a CPU (schedstat). Setting threads back to nice 0 needs root (CAP_SYS_NICE).
// Env: NICE (10), NICE_WINDOW_S (8), NICE_ROUNDS (4 pairs), NICE_IMAGE (1600: which of the three
// sizes), NICE_CORES (2), MODEL_PATH (./models/demo), BENCH_SERVER (dist/server.js).
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeImages, multipartBody } from './bench-images.js'
import { autocannon, f, printMachine, printTable, threadStats } from './bench-load.js'
import { envNumber, percentile, pollHealth, startServer, stopAndReport, BENCH_MODEL_PATH, BENCH_ROOT, BENCH_SERVER_ENTRY } from './bench-server.js'


const NICE = envNumber('NICE', 10)
const WINDOW_S = envNumber('NICE_WINDOW_S', 8)
const ROUNDS = envNumber('NICE_ROUNDS', 4)
const CORES = envNumber('NICE_CORES', 2)
const IMAGE = process.env.NICE_IMAGE ?? '1600'
const WARMUP_S = 3
const CONNECTIONS = 8
const HEALTH_INTERVAL_MS = 50

/** Every server thread but the main one to exactly `nice` (back to 0 included, which needs root). */
function setNice (pid: number, nice: number): void {
  for (const tid of threadStats(pid).keys()) {
    if (tid === pid) continue
    try {
      os.setPriority(tid, nice)
    } catch (err) {
      // A thread that ended meanwhile is no matter; a refusal is.
      if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') {
        throw new Error(`could not set the server's threads to nice ${nice} (returning to 0 needs root or CAP_SYS_NICE): ${(err as Error).message}`)
      }
    }
  }
}

printMachine()
const image = (await makeImages()).find((i) => i.name.includes(IMAGE))
if (image === undefined) throw new Error(`NICE_IMAGE=${IMAGE} matches none of the three images`)
const { body, contentType } = multipartBody(image.bytes)
console.log(`load: autocannon ${CONNECTIONS} connections, ${image.name}; ${ROUNDS} pairs of ${WINDOW_S} s windows, nice 0 then ${NICE}; ` +
  `server pinned to CPUs 0-${CORES - 1}, WORKERS=${CORES}`)

const server = await startServer(BENCH_ROOT, BENCH_SERVER_ENTRY,
  { MODEL_PATH: BENCH_MODEL_PATH, RATE_LIMIT_MAX: '0', WORKERS: String(CORES), BACKGROUND_NICE: '0' }, [], `0-${CORES - 1}`)
let failed = false
try {
  let answered = 0
  const run = autocannon({
    url: `${server.url}/api/v2/analyze/guest`, method: 'POST', connections: CONNECTIONS,
    duration: WARMUP_S + ROUNDS * 2 * WINDOW_S + 1, headers: { 'content-type': contentType }, body
  }).on('response', (_client, status) => { if (status === 200) answered++ })
  await sleep(WARMUP_S * 1000)

  const windows: Record<'0' | 'n', number[][]> = { 0: [], n: [] }
  for (let w = 0; w < ROUNDS * 2; w++) {
    const nice = w % 2 === 0 ? 0 : NICE
    setNice(server.pid, nice)
    const stop = new AbortController()
    const health = pollHealth(server.url, HEALTH_INTERVAL_MS, stop.signal)
    const [main0, answered0, t0] = [threadStats(server.pid).get(server.pid)!, answered, performance.now()]
    await sleep(WINDOW_S * 1000)
    const [main1, wallS] = [threadStats(server.pid).get(server.pid)!, (performance.now() - t0) / 1000]
    stop.abort()
    const { latenciesMs } = await health
    const requests = answered - answered0
    windows[nice === 0 ? 0 : 'n'].push([requests / wallS, percentile(latenciesMs, 50), percentile(latenciesMs, 99), Math.max(...latenciesMs),
      (main1.waitNs - main0.waitNs) / 1e6 / wallS, (main1.cpuNs - main0.cpuNs) / 1e6 / requests, os.loadavg()[0]!])
  }
  await run
  const headers = ['window', 'req/s', '/health p50 ms', 'p99 ms', 'max ms', 'main thread waiting for a CPU, ms/s', 'main thread ms/request', 'loadavg']
  const row = (label: string, v: number[]) => [label, ...v.map((x, i) => f(x, i === 6 ? 2 : 1))]
  printTable(headers, windows[0].flatMap((zero, i) => [row(`${i + 1}: nice 0`, zero), row(`${i + 1}: nice ${NICE}`, windows.n[i]!)]))
  const median = (rows: number[][]) => rows[0]!.map((_, i) => percentile(rows.map((r) => r[i]!), 50))
  console.log('\nmedians:')
  printTable(headers, [row('nice 0', median(windows[0])), row(`nice ${NICE}`, median(windows.n))])
} catch (err) {
  failed = true
  console.error(err)
} finally {
  await stopAndReport(server, failed)
}
