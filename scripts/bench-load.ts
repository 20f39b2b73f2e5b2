// Shared by bench-overload.ts and soak.ts: an HTTP load generator (closed loop: N clients back to
// back; open loop: a fixed arrival rate on a bounded number of sockets), /proc readers for the
// server (RSS, open fds) and a /metrics scraper. Not a test.
import { Agent, request } from 'node:http'
import { createRequire } from 'node:module'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import os from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { multipartBody, type BenchImage } from './bench-images.js'

// autocannon ships no types; this is the part of its API the benches use. Without a callback it
// returns its event emitter, which is also a promise of the summary.
export interface LoadRun extends PromiseLike<unknown> {
  on: ((event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void) => LoadRun) &
    ((event: 'reqError', listener: (err: Error) => void) => LoadRun)
}
export type Autocannon = (opts: {
  url: string, method: 'POST', connections: number, headers: Record<string, string>, body: Buffer
  /** Seconds to run, or a number of requests to send. */
  duration?: number, amount?: number
}) => LoadRun
export const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

export const f = (value: number, digits = 1) => Number.isFinite(value) ? value.toFixed(digits) : '–'
export const mib = (bytes: number) => f(bytes / 2 ** 20, 1)
export const mark = (ok: boolean) => ok ? '✓' : '✗'

export function printTable (headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  console.log(line(headers))
  console.log('|' + widths.map((w, i) => i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `).join('|') + '|')
  for (const row of rows) console.log(line(row))
}

export function printMachine (): void {
  const cpus = os.cpus()
  console.log(`machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores (availableParallelism), ` +
    `${f(os.totalmem() / 2 ** 30)} GiB RAM (${f(os.freemem() / 2 ** 30)} free), Node ${process.version}, ${os.platform()} ${os.release()}`)
  console.log(`versions: sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), ` +
    `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}; loadavg ${os.loadavg().map((l) => f(l, 2)).join(' ')}`)
}

// ---------------------------------------------------------------------------------------------
// The server's process, from /proc (Linux only; NaN elsewhere).

/** VmRSS of a process, bytes. */
export function rssBytes (pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? Number.NaN : Number(m[1]) * 1024
  } catch {
    return Number.NaN
  }
}

export interface FdCount {
  total: number
  sockets: number
  /** Everything else: files, pipes, eventfd/epoll (anon_inode)… */
  other: number
}

export function fdCount (pid: number): FdCount {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`)
    let sockets = 0
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++
      } catch {} // closed between readdir and readlink
    }
    return { total: fds.length, sockets, other: fds.length - sockets }
  } catch {
    return { total: Number.NaN, sockets: Number.NaN, other: Number.NaN }
  }
}

/** Samples RSS every `intervalMs` until stopped: its peak and every sample with its time. */
export class RssSampler {
  readonly samples: Array<{ t: number, rss: number }> = []
  peak = 0
  readonly #timer: NodeJS.Timeout

  constructor (pid: number, intervalMs: number) {
    const take = () => {
      const rss = rssBytes(pid)
      if (!Number.isFinite(rss)) return
      this.samples.push({ t: performance.now(), rss })
      if (rss > this.peak) this.peak = rss
    }
    take()
    this.#timer = setInterval(take, intervalMs)
  }

  /** Median RSS of the samples taken in [from, to) (performance.now() times). */
  medianBetween (from: number, to: number): number {
    const values = this.samples.filter((s) => s.t >= from && s.t < to).map((s) => s.rss).sort((a, b) => a - b)
    return values.length === 0 ? Number.NaN : values[values.length >> 1]!
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}

// ---------------------------------------------------------------------------------------------
// /metrics: the Prometheus text, as "name{labels}" → value.

const metricsAgent = new Agent({ keepAlive: true, maxSockets: 1 })

export async function scrape (url: string): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(`${url}/metrics`, { agent: metricsAgent }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { data += chunk })
      res.once('end', () => resolve(data))
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end()
  })
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

/** Sum of the series whose key starts with `prefix` and contains every `parts` substring. */
export const metricSum = (m: Map<string, number>, prefix: string, ...parts: string[]) =>
  [...m].filter(([k]) => k.startsWith(prefix) && parts.every((p) => k.includes(p))).reduce((s, [, v]) => s + v, 0)

// ---------------------------------------------------------------------------------------------
// The HTTP client.

export interface Shot {
  /** 0 when no response arrived (connection error or client timeout). */
  status: number
  /** Request start (connect included) to response headers, ms. */
  headersMs: number
  /** Request start to the end of the response body, ms. */
  totalMs: number
  /** Request start to the TCP connection being established, ms; NaN on a reused connection. */
  connectMs: number
  /** Request start to the last byte of the upload handed to the kernel, ms (NaN if never). */
  uploadedMs: number
  error?: string
  /** Which image (index into the list the load was given). */
  image: number
  /** When it started, performance.now(). */
  startedAt: number
  /** The response body, only for targets with `readBody`. */
  body?: string
}

export interface Target {
  url: string
  body: Buffer
  contentType: string
  image: number
  /** Keep the response body (bench-swap reads which model version answered). */
  readBody?: boolean
}

export function targetsFor (url: string, images: BenchImage[]): Target[] {
  return images.map((img, image) => ({ url: `${url}/api/v2/analyze/guest`, ...multipartBody(img.bytes), image }))
}

// Every request is bounded: nothing the server does can keep the bench running.
const CLIENT_TIMEOUT_MS = 60_000

/**
 * A keep-alive client with no per-host socket limit of its own: callers bound the requests in
 * flight themselves, so a request never waits in the agent's queue (its clock starts when it is
 * handed to a socket, or to a new connection).
 */
export class LoadClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' })
  inFlight = 0
  /** Errors seen on a request after its response had arrived (e.g. EPIPE on a closed upload). */
  lateErrors = 0

  /** Client sockets open right now (busy + idle). */
  get sockets (): number {
    const count = (lists: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(lists).reduce((n, l) => n + (l?.length ?? 0), 0)
    return count(this.agent.sockets) + count(this.agent.freeSockets)
  }

  async send (target: Target): Promise<Shot> {
    this.inFlight++
    const startedAt = performance.now()
    return await new Promise<Shot>((resolve) => {
      let headersMs = Number.NaN
      let connectMs = Number.NaN
      let uploadedMs = Number.NaN
      let status = 0
      let body: string | undefined
      let done = false
      const finish = (error?: string) => {
        if (done) return
        done = true
        this.inFlight--
        resolve({ status, headersMs, totalMs: performance.now() - startedAt, connectMs, uploadedMs, error, image: target.image, startedAt, body })
      }
      const req = request(target.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': target.contentType, 'content-length': String(target.body.length) }
      }, (res) => {
        headersMs = performance.now() - startedAt
        status = res.statusCode ?? 0
        if (target.readBody === true) {
          body = ''
          res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
        } else {
          res.resume()
        }
        res.once('end', () => finish())
        res.once('error', () => finish())
        res.once('close', () => finish())
      })
      req.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => { connectMs = performance.now() - startedAt })
      })
      req.once('finish', () => { uploadedMs = performance.now() - startedAt })
      req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (status !== 0) {
          this.lateErrors++
          finish()
        } else {
          finish(err.code ?? err.message)
        }
      })
      req.end(target.body)
    })
  }

  close (): void {
    this.agent.destroy()
  }
}

/** The bench's own event-loop delay: a busy client delays its own clocks. */
export function clientLag (): { stop: () => { p99Ms: number, maxMs: number } } {
  const h = monitorEventLoopDelay({ resolution: 5 })
  h.enable()
  return {
    stop: () => {
      h.disable()
      return { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 }
    }
  }
}

/** `connections` clients, each sending its next request when the last one is answered. */
export async function closedLoop (
  client: LoadClient, connections: number, durationMs: number, next: (i: number) => Target, onShot: (shot: Shot) => void
): Promise<void> {
  const end = performance.now() + durationMs
  let i = 0
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) onShot(await client.send(next(i++)))
  }))
}

export interface OpenLoopResult {
  /** Requests due by the schedule. */
  due: number
  /** Sent (due minus skipped). */
  sent: number
  /** Due while `maxInFlight` requests were already open: not sent (the client was the limit). */
  skipped: number
}

/**
 * Open-model load: request k is due at start + k / rate, whatever the server is doing; it goes
 * out at once on an idle or new connection, unless `maxInFlight` are already open (then it is
 * skipped and counted, so the offered rate is never silently lower). Resolves once every request
 * sent has been answered or failed.
 */
export async function openLoop (
  client: LoadClient, ratePerS: number, durationMs: number, maxInFlight: number,
  next: (i: number) => Target, onShot: (shot: Shot) => void
): Promise<OpenLoopResult> {
  const start = performance.now()
  const pending = new Set<Promise<void>>()
  let due = 0
  let skipped = 0
  for (;;) {
    const elapsed = performance.now() - start
    if (elapsed >= durationMs) break
    const dueNow = Math.floor(elapsed * ratePerS / 1000) + 1
    while (due < dueNow) {
      if (client.inFlight < maxInFlight) {
        const p = client.send(next(due)).then(onShot)
        pending.add(p)
        void p.finally(() => pending.delete(p))
      } else {
        skipped++
      }
      due++
    }
    await sleep(Math.max(0, start + due * 1000 / ratePerS - performance.now()))
  }
  await Promise.all(pending)
  return { due, sent: due - skipped, skipped }
}

// ---------------------------------------------------------------------------------------------
// Threads: CPU used and time spent runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat).

export interface ThreadStat { comm: string, cpuNs: number, waitNs: number, slices: number }

export function threadStats (pid: number): Map<number, ThreadStat> {
  const out = new Map<number, ThreadStat>()
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const [cpu, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number)
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      out.set(Number(tid), { comm, cpuNs: cpu!, waitNs: wait!, slices: slices! })
    } catch {} // the thread ended meanwhile
  }
  return out
}

export interface ThreadGroup { name: string, threads: number, cores: number, waitPerS: number, waitPerSliceMs: number }

/**
 * Per thread name (the main thread alone, as "main"): cores used and CPU wait between two
 * snapshots, busiest first. waitPerS is ms spent runnable-but-not-running per second of wall
 * time, summed over the group's threads.
 */
export function threadGroups (pid: number, before: Map<number, ThreadStat>, after: Map<number, ThreadStat>, wallS: number): ThreadGroup[] {
  const groups = new Map<string, { threads: number, cpuNs: number, waitNs: number, slices: number }>()
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpuNs: 0, waitNs: 0, slices: 0 }
    const name = tid === pid ? 'main' : a.comm
    const g = groups.get(name) ?? { threads: 0, cpuNs: 0, waitNs: 0, slices: 0 }
    g.threads++
    g.cpuNs += a.cpuNs - b.cpuNs
    g.waitNs += a.waitNs - b.waitNs
    g.slices += a.slices - b.slices
    groups.set(name, g)
  }
  return [...groups].map(([name, g]) => ({
    name, threads: g.threads, cores: g.cpuNs / 1e9 / wallS, waitPerS: g.waitNs / 1e6 / wallS, waitPerSliceMs: g.slices === 0 ? 0 : g.waitNs / 1e6 / g.slices
  })).sort((x, y) => y.cores - x.cores)
}

export function printThreadGroups (groups: ThreadGroup[]): void {
  printTable(['threads (by name)', 'count', 'cores', 'waiting for a CPU, ms/s', 'mean wait per run, ms'],
    groups.filter((g) => g.cores >= 0.005 || g.name === 'main').map((g) =>
      [g.name, String(g.threads), f(g.cores, 2), f(g.waitPerS, 0), f(g.waitPerSliceMs, 2)]))
}
