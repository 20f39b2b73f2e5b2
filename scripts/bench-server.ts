// The real server as a child process, its /health poller, and CPU accounting from /proc.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { createInterface } from 'node:readline'
import { serverNodeArgs } from './server-node-args.js'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface RunningServer {
  pid: number
  url: string
  /** How it ended, once it has: a crash under load shows here. */
  exit: () => Exit | undefined
  /** SIGTERM (SIGKILL after the grace period), then how it exited. */
  stop: () => Promise<Exit>
  /** Log lines that repeated, with their counts. */
  logRepeats: () => string[]
}

export const describeExit = ({ code, signal }: Exit) => signal === null ? `exit code ${code}` : `killed by ${signal}`

const HOST = '127.0.0.1'
const BOOT_TIMEOUT_MS = 120_000
// Above the server's default SHUTDOWN_GRACE_S (30 s).
const STOP_TIMEOUT_MS = 40_000

async function freePort (): Promise<number> {
  const probe = createServer().listen(0, HOST)
  await once(probe, 'listening')
  const address = probe.address()
  probe.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

// A separate keep-alive socket for /health, so its latency is the server's and not the queue of
// autocannon's connections.
const healthAgent = new Agent({ keepAlive: true, maxSockets: 1 })

export async function getStatus (url: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { agent: healthAgent }, (res) => {
      res.resume()
      res.once('end', () => resolve(res.statusCode ?? 0))
    })
    req.once('error', reject)
    req.end()
  })
}

const LOG_LINE_CHARS = 400

interface LogEntry { level?: number, msg?: string, err?: { type?: string, code?: string } }

/**
 * Echoes the first server log line of each kind (level, message, error type and code) and counts
 * the rest: a client disconnect logs once per in-flight request.
 */
function forward (child: ChildProcess): () => string[] {
  const seen = new Map<string, number>()
  const onLine = (line: string) => {
    let key = line
    try {
      const entry = JSON.parse(line) as LogEntry
      key = [entry.level, entry.msg, entry.err?.type, entry.err?.code].filter((k) => k !== undefined).join(' ')
    } catch {}
    const count = seen.get(key) ?? 0
    seen.set(key, count + 1)
    if (count === 0) process.stderr.write(`  [server] ${line.length > LOG_LINE_CHARS ? `${line.slice(0, LOG_LINE_CHARS)}…` : line}\n`)
  }
  for (const stream of [child.stdout, child.stderr]) {
    if (stream !== null) createInterface({ input: stream }).on('line', onLine)
  }
  return () => [...seen].filter(([, n]) => n > 1).map(([key, n]) => `${n}× ${key}`)
}

/** The repository root, and the model and server entry a bench runs (MODEL_PATH, BENCH_SERVER). */
export const BENCH_ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BENCH_MODEL_PATH = resolve(BENCH_ROOT, process.env.MODEL_PATH ?? 'models/demo')
export const BENCH_SERVER_ENTRY = resolve(BENCH_ROOT, process.env.BENCH_SERVER ?? 'dist/server.js')

// Every server a bench has started and not yet seen exit: Ctrl-C must not leave one running.
const live = new Set<() => Promise<Exit>>()
process.once('SIGINT', () => {
  void Promise.all([...live].map(async (stop) => await stop())).finally(() => process.exit(130))
})

/**
 * `node <Procfile flags> [nodeArgs] <entry>` on a free loopback port, pinned to `cpus` with
 * `taskset -c` when given; resolves once GET /health answers 200.
 */
export async function startServer (
  cwd: string, entry: string, env: Record<string, string>, nodeArgs: string[] = [], cpus?: string
): Promise<RunningServer> {
  const port = await freePort()
  // The Procfile's flags first (the thread-pool preload among them), then the bench's own.
  const node = [process.execPath, ...serverNodeArgs(BENCH_ROOT), ...nodeArgs, entry]
  // taskset execs node in place, so the child's pid stays the server's.
  const [command, ...args] = cpus === undefined ? node : ['taskset', '-c', cpus, ...node]
  const child = spawn(command!, args, {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, HOST, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const logRepeats = forward(child)
  let exit: Exit | undefined
  const exited = once(child, 'exit').then(([code, signal]) => {
    exit = { code: code as number | null, signal: signal as NodeJS.Signals | null }
    return exit
  })
  const url = `http://${HOST}:${port}`
  const stop = async () => {
    if (exit !== undefined) return exit
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
  live.add(stop)
  void exited.then(() => live.delete(stop))
  const deadline = Date.now() + BOOT_TIMEOUT_MS
  for (;;) {
    if (exit !== undefined) throw new Error(`server ended before it was ready: ${describeExit(exit)}`)
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`server not ready after ${BOOT_TIMEOUT_MS / 1000} s`)
    }
    const status = await getStatus(`${url}/health`).catch(() => 0)
    if (status === 200) return { pid: child.pid!, url, exit: () => exit, stop, logRepeats }
    await sleep(100)
  }
}

export interface HealthSamples {
  latenciesMs: number[]
  failures: number
}

/** GET /health every `intervalMs`, one at a time, until `signal` aborts. */
export async function pollHealth (url: string, intervalMs: number, signal: AbortSignal): Promise<HealthSamples> {
  const samples: HealthSamples = { latenciesMs: [], failures: 0 }
  while (!signal.aborted) {
    const t0 = performance.now()
    const status = await getStatus(`${url}/health`).catch(() => 0)
    const elapsed = performance.now() - t0
    samples.latenciesMs.push(elapsed)
    if (status !== 200) samples.failures++
    await sleep(Math.max(0, intervalMs - elapsed))
  }
  return samples
}

/** Nearest-rank percentile. */
export const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]!
}

// Linux accounts CPU time in USER_HZ ticks, 100 on every mainstream kernel build.
const TICKS_PER_S = 100

/**
 * CPU seconds used so far (user + system) by a process, or by one of its threads (the main thread's
 * id is the pid), or NaN off Linux.
 */
export function processCpuS (pid: number, thread?: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`
    const fields = readFileSync(path, 'utf8').replace(/^.*\) /s, '').split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
  } catch {
    return Number.NaN
  }
}

/** Resident memory now and at its peak (VmRSS, VmHWM) in MiB, or NaN off Linux. */
export function processRssMiB (pid: number): { rss: number, peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN)
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 }
  } catch {
    return { rss: Number.NaN, peak: Number.NaN }
  }
}

export interface MachineCpu {
  /** CPU seconds spent not idle, by anyone. */
  busyS: number
  /** CPU seconds the hypervisor gave to other guests while this one wanted to run. */
  stealS: number
}

/** Machine-wide CPU counters since boot, or NaN off Linux. */
export function machineCpu (): MachineCpu {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    return { busyS: (user! + nice! + system! + irq! + softirq!) / TICKS_PER_S, stealS: steal! / TICKS_PER_S }
  } catch {
    return { busyS: Number.NaN, stealS: Number.NaN }
  }
}

/**
 * Waits until the rest of the machine has been nearly idle for `windowMs` (a shared machine runs
 * other people's tests in bursts), or `maxWaitMs` has passed. Returns the ms waited, and whether it
 * found quiet.
 */
export async function waitForQuiet (maxWaitMs: number, windowMs = 2000, idleCores = 0.25): Promise<{ waitedMs: number, quiet: boolean }> {
  const start = performance.now()
  for (;;) {
    const [machine0, self0] = [machineCpu(), process.cpuUsage()]
    await sleep(windowMs)
    const self = process.cpuUsage(self0)
    const others = (machineCpu().busyS - machine0.busyS - (self.user + self.system) / 1e6) / (windowMs / 1000)
    const waitedMs = performance.now() - start
    if (!(others > idleCores)) return { waitedMs, quiet: true }
    if (waitedMs >= maxWaitMs) return { waitedMs, quiet: false }
  }
}

/** A positive number from the environment, or the default; anything else stops the bench. */
export const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`)
  return value
}

/** Stops a bench's server by PID and says how it ended; a crash or unclean exit fails the bench. */
export async function stopAndReport (server: RunningServer, failed: boolean): Promise<void> {
  const crashed = server.exit() !== undefined
  const exit = await server.stop()
  console.log(`server (pid ${server.pid}) ${crashed ? 'had already ended' : 'stopped with SIGTERM'}: ${describeExit(exit)}`)
  for (const line of server.logRepeats()) console.log(`  log: ${line}`)
  if (failed || crashed || exit.code !== 0) process.exitCode = 1
}
