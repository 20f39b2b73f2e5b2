// Runs the built server (`node dist/server.js`, with the Procfile's flags) as a child process, as
// Elastic Beanstalk and Docker do.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { serverNodeArgs } from '../../scripts/server-node-args.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SERVER = fileURLToPath(new URL('../../dist/server.js', import.meta.url))

export interface SpawnedServer {
  child: ChildProcess
  url: string
  /** Everything the process wrote, for assertions on logs. */
  output: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface SpawnOptions {
  /** Pins the process to these CPUs with `taskset -c` and leaves WORKERS to the thread budget. */
  cpus?: string
}

export async function spawnServer (t: Test, env: Record<string, string> = {}, { cpus }: SpawnOptions = {}): Promise<SpawnedServer> {
  if (!existsSync(SERVER)) throw new Error('dist/server.js is missing: run `npm run build` (npm test does)')
  const node = [process.execPath, ...serverNodeArgs(ROOT), SERVER]
  const [command, ...args] = cpus === undefined ? node : ['taskset', '-c', cpus, ...node]
  const child = spawn(command!, args, {
    cwd: ROOT,
    // BACKGROUND_NICE=0 unless a test sets it: at the default 10 a server's workers would get a
    // tenth of a core against the other test files tap runs meanwhile (test/server-nice.test.ts
    // covers the setting).
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', ...(cpus === undefined ? { WORKERS: '2' } : {}), LOG_LEVEL: 'info', BACKGROUND_NICE: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 30 s:\n${output}`)), 30_000)
    const onData = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
    }
    child.stdout!.on('data', onData)
    void exited.then(() => { clearTimeout(timer); reject(new Error(`server exited before listening:\n${output}`)) })
  })
  return { child, url, output: () => output, exited }
}

/** Polls /health until it answers 200 (or the deadline passes); returns the bodies seen. */
export async function waitReady (url: string, timeoutMs = 60_000): Promise<Array<{ status: number, body: unknown }>> {
  const seen: Array<{ status: number, body: unknown }> = []
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/health`)
    seen.push({ status: res.status, body: await res.json() })
    if (res.status === 200) return seen
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`not ready after ${timeoutMs} ms: ${JSON.stringify(seen.at(-1))}`)
}

/** Polls `test` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until (what: string, test: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** GET /health's body, whatever its status. */
export async function healthOf<T> (url: string): Promise<T> {
  return await (await fetch(`${url}/health`)).json() as T
}
