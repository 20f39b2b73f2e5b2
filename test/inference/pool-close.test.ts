// Closing a pool while abandoned inferences still run in its workers (a swap, a SIGTERM right
// after clients left). Terminating a worker inside onnxruntime's session.run aborts the whole
// process (Napi::Error → std::terminate), so each case runs in a child process and checks how
// it exited, not only what it returned.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { writeSlowBundle } from '../helpers/model.js'

const SCENARIO = fileURLToPath(new URL('../helpers/pool-close-scenario.ts', import.meta.url))

interface Outcome { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

async function runScenario (modelFile: string, args: string[]): Promise<Outcome> {
  // The child inherits tap's loader (execArgv), so it runs the .ts sources like this file.
  const child = spawn(process.execPath, [...process.execArgv, SCENARIO, modelFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  return await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })))
}

function report (o: Outcome): Record<string, unknown> {
  const line = o.stdout.trim().split('\n').at(-1) ?? ''
  try { return JSON.parse(line) as Record<string, unknown> } catch { return { stdout: o.stdout, stderr: o.stderr } }
}

t.test('close() with abandoned inferences running on two workers waits for them; the process does not abort', async (t) => {
  const bundle = await writeSlowBundle(t.testdir())
  const out = await runScenario(bundle.modelPath, ['abandon'])
  t.notMatch(out.stderr, /Napi::Error|terminate called/, 'no native abort')
  t.same({ code: out.code, signal: out.signal }, { code: 0, signal: null }, `exit 0\n${out.stderr}`)
  t.match(report(out), { runningAtClose: 2, queuedAtClose: 2, runningAfterClose: 0, restarts: 0, queuedRejections: ['NOT_READY', 'NOT_READY'] })
})
