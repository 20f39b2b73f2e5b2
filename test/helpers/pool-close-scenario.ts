// Run by test/inference/pool-close.test.ts in a child process: a native abort must end only it.
import { classifyError } from '../../src/errors.js'
import { createPool } from '../../src/inference/pool.js'
import { SLOW_SIZE } from './model.js'

const [modelFile, scenario] = process.argv.slice(2) as [string, string]
const dims = [1, 3, SLOW_SIZE, SLOW_SIZE]
const tensor = () => new Float32Array(3 * SLOW_SIZE * SLOW_SIZE).fill(0.3)
const pool = createPool({ modelFile, intraOpThreads: 1, workers: 2, maxQueue: 8, timeoutMs: 30_000 })
await pool.warmUp(dims)

if (scenario === 'abandon') {
  // Four callers: two tasks start on the two workers, two wait; then every caller leaves.
  const callers = Array.from({ length: 4 }, () => new AbortController())
  const pending = callers.map(async (c) => await pool.infer(tensor(), dims, c.signal).then(() => 'done', (err: unknown) => classifyError(err).code))
  // The two that wait are still waiting when close() drops them.
  const queued = pending.slice(2)
  for (const c of callers.slice(0, 2)) c.abort()
  const runningAtClose = pool.stats().inFlight - pool.stats().queued
  const queuedAtClose = pool.stats().queued
  await pool.close()
  const after = pool.stats()
  process.stdout.write(`${JSON.stringify({ runningAtClose, queuedAtClose, runningAfterClose: after.inFlight - after.queued, restarts: after.restarts, queuedRejections: await Promise.all(queued) })}\n`)
}
