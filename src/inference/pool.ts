import { Piscina } from 'piscina'
import { AppError } from '../errors.js'
import type { TensorSpec } from '../imaging/tensor.js'
import type { TensorMetadata } from '../models/manifest.js'
import { Dispatcher } from './dispatcher.js'
import type { InferResult, InferTask, WorkerInit } from './protocol.js'

export interface PoolOptions extends WorkerInit {
  workers: number
  /** Tasks allowed to wait for a free worker; more are refused with OVERLOADED. */
  maxQueue: number
  timeoutMs: number
  /** How long close() waits for running inferences (default 30 s, Piscina's closeTimeout). */
  closeTimeoutMs?: number
}

export interface InferenceOutput {
  data: Float32Array
  dims: number[]
  threadId: number
  /** Time the model ran in its worker; the rest of the wait was queueing and transfer. */
  runMs: number
}

export interface ModelIO {
  inputs: TensorMetadata[]
  outputs: TensorMetadata[]
}

export interface PoolStats {
  workers: number
  /** Tasks running or waiting, and how many the pool admits before refusing. */
  inFlight: number
  capacity: number
  queued: number
  /** Tasks inside a worker right now, including those whose caller left or timed out. */
  running: number
  completed: number
  /** Workers replaced after a crash or a timeout. */
  restarts: number
}

/** The inference side as the rest of the server sees it. */
export interface InferencePool {
  readonly workers: number
  infer: (data: Float32Array, dims: number[], signal?: AbortSignal) => Promise<InferenceOutput>
  /** The same for a decoded photo: the worker turns its pixels into the tensor (toTensor). */
  inferPixels: (rgb: Uint8Array, spec: TensorSpec, signal?: AbortSignal) => Promise<InferenceOutput>
  describe: () => Promise<ModelIO>
  /**
   * Runs one inference on every worker, so each has its session loaded and its kernels warm;
   * rejects when an output is not finite.
   */
  warmUp: (dims: number[]) => Promise<void>
  stats: () => PoolStats
  /** Kills the worker that takes it; only a pool created with `testHooks` obeys. */
  crashForTest: () => Promise<unknown>
  /**
   * Refuses new tasks, fails waiting ones with NOT_READY, waits until no worker runs a task
   * (abandoned ones included), then stops the workers. Past `timeoutMs` (default: the pool's
   * `closeTimeoutMs`) it rejects with the workers left running, since a worker terminated
   * inside session.run aborts the process; the pool closes itself when its last task ends,
   * and calling close() again waits once more.
   */
  close: (timeoutMs?: number) => Promise<void>
}

export const POOL_CLOSED_MESSAGE = 'The model is being replaced or the server is stopping; try again shortly.'

// Sources run as .ts under tap/tsx; the build runs dist/*.js.
/* c8 ignore next: the .js branch runs only in the built server (covered by the spawned smoke test) */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

// Tensors and pixels move to the worker without a copy; describe carries nothing.
const transferable = (task: InferTask): ArrayBuffer[] =>
  task.kind === 'describe' ? [] : [(task.kind === 'pixels' ? task.rgb : task.data).buffer as ArrayBuffer]

// The worker answers 'infer' and 'pixels' tasks with an 'infer' result (protocol.ts).
function inferenceOutput (result: InferResult): InferenceOutput {
  const r = result as Extract<InferResult, { kind: 'infer' }>
  return { data: r.data, dims: r.dims, threadId: r.threadId, runMs: r.runMs }
}

export function createPool (options: PoolOptions): InferencePool {
  const { workers, maxQueue, timeoutMs, closeTimeoutMs = 30_000, ...init } = options
  const piscina = new Piscina<InferTask, InferResult>({
    filename: WORKER_URL.href,
    minThreads: workers,
    maxThreads: workers,
    // Workers never idle out: each holds a loaded session that is expensive to rebuild.
    idleTimeout: Number.MAX_SAFE_INTEGER,
    workerData: init
  })
  // A worker that dies is replaced by Piscina; its task's promise rejects. Without a listener,
  // an 'error' event with no task attached would crash the process.
  piscina.on('error', () => {})
  // Piscina removes a dead worker (emitting workerDestroy) before it fails that worker's task,
  // and starts a replacement; counting removals outside close() counts replacements.
  let restarts = 0
  let closing = false
  piscina.on('workerDestroy', () => { if (!closing) restarts++ })
  // Piscina only ever holds as many tasks as there are workers; the dispatcher queues the rest.
  const dispatcher = new Dispatcher<InferTask, InferResult>({
    concurrency: workers,
    maxWaiting: maxQueue,
    timeoutMs,
    start: async (task) => await piscina.run(task, { transferList: transferable(task) })
  })
  const run = async (task: InferTask, signal?: AbortSignal) => await dispatcher.run(task, signal)

  // Piscina's own close() is not enough: with two or more workers it decides the pool is idle
  // when the first running task ends (piscina 5.3.2 counts task-done events, not idle workers)
  // and terminates the others mid-run; after its closeTimeout it terminates them regardless.
  // Our dispatcher knows what runs, so Piscina is only closed once nothing does.
  let stopped: Promise<void> | undefined
  const stop = async () => {
    closing = true
    await dispatcher.close(() => new AppError('NOT_READY', POOL_CLOSED_MESSAGE))
    await piscina.close()
  }

  return {
    workers,
    async infer (data, dims, signal) {
      return inferenceOutput(await run({ kind: 'infer', data, dims }, signal))
    },
    async inferPixels (rgb, spec, signal) {
      // A copy of exactly these bytes (sharp's buffer may not be detachable) is sent without another.
      return inferenceOutput(await run({ kind: 'pixels', rgb: Uint8Array.prototype.slice.call(rgb), spec }, signal))
    },
    async describe () {
      const result = await run({ kind: 'describe' }) as Extract<InferResult, { kind: 'describe' }>
      return { inputs: result.inputs, outputs: result.outputs }
    },
    async warmUp (dims) {
      const size = dims.reduce((a, b) => a * b, 1)
      const seen = new Set<number>()
      // The initial workers take one task each (least-busy first); rounds repeat only if a
      // replaced worker joined meanwhile.
      for (let round = 0; round < 10 && seen.size < workers; round++) {
        const results = await Promise.all(Array.from({ length: workers }, async () =>
          await this.infer(new Float32Array(size), dims)))
        for (const r of results) {
          // A model that answers a plain input with NaN/Inf would answer every photo so.
          if (!r.data.every(Number.isFinite)) throw new Error('the model\'s warm-up inference produced NaN or Infinity: it cannot be served')
          seen.add(r.threadId)
        }
      }
    },
    stats () {
      return {
        workers,
        inFlight: dispatcher.running + dispatcher.waiting,
        capacity: dispatcher.capacity,
        queued: dispatcher.waiting,
        running: dispatcher.running,
        completed: piscina.completed,
        restarts
      }
    },
    async crashForTest () {
      return await run({ kind: 'crash', data: new Float32Array(1), dims: [1] })
    },
    async close (timeoutMs = closeTimeoutMs) {
      stopped ??= stop()
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, true) })
      const timedOut = await Promise.race([stopped.then(() => false), late])
      clearTimeout(timer)
      if (timedOut) throw new Error(`pool not closed after ${timeoutMs} ms (${dispatcher.running} inference(s) still running); its workers are left to finish, then it closes`)
    }
  }
}
