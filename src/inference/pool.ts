import { Piscina } from 'piscina'
import { AppError } from '../errors.js'
import type { TensorMetadata } from '../models/manifest.js'
import type { InferResult, InferTask, WorkerInit } from './protocol.js'

export interface PoolOptions extends WorkerInit {
  workers: number
  /** Tasks allowed to wait for a free worker; more are refused with OVERLOADED. */
  maxQueue: number
  timeoutMs: number
}

export interface InferenceOutput {
  data: Float32Array
  dims: number[]
  threadId: number
}

export interface ModelIO {
  inputs: TensorMetadata[]
  outputs: TensorMetadata[]
}

export interface PoolStats {
  workers: number
  queued: number
  completed: number
  utilization: number
}

/** The inference side as the rest of the server sees it. */
export interface InferencePool {
  readonly workers: number
  infer: (data: Float32Array, dims: number[], signal?: AbortSignal) => Promise<InferenceOutput>
  describe: () => Promise<ModelIO>
  /** Runs one inference on every worker, so each has its session loaded and its kernels warm. */
  warmUp: (dims: number[]) => Promise<void>
  stats: () => PoolStats
  close: () => Promise<void>
}

// Sources run as .ts under tap/tsx; the build runs dist/*.js.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

const isAbort = (err: unknown) => err instanceof Error && err.name === 'AbortError'

export function createPool (options: PoolOptions): InferencePool {
  const { workers, maxQueue, timeoutMs, ...init } = options
  const piscina = new Piscina<InferTask, InferResult>({
    filename: WORKER_URL.href,
    minThreads: workers,
    maxThreads: workers,
    maxQueue,
    // Workers never idle out: each holds a loaded session that is expensive to rebuild.
    idleTimeout: Number.MAX_SAFE_INTEGER,
    workerData: init
  })
  // A worker that dies is replaced by Piscina; its task's promise rejects. Without a listener,
  // an 'error' event with no task attached would crash the process.
  piscina.on('error', () => {})

  async function run (task: InferTask, signal: AbortSignal | undefined): Promise<InferResult> {
    const deadline = AbortSignal.timeout(timeoutMs)
    const transferList = task.kind === 'infer' ? [task.data.buffer as ArrayBuffer] : []
    try {
      return await piscina.run(task, {
        transferList,
        signal: signal === undefined ? deadline : AbortSignal.any([deadline, signal])
      })
    } catch (err) {
      // Aborting a running task terminates its worker, so a timed-out result is never used.
      if (isAbort(err) && deadline.aborted) {
        throw new AppError('INFERENCE_TIMEOUT', undefined, { cause: err })
      }
      throw err
    }
  }

  return {
    workers,
    async infer (data, dims, signal) {
      const result = await run({ kind: 'infer', data, dims }, signal)
      if (result.kind !== 'infer') throw new Error('worker answered an infer task with a description')
      return { data: result.data, dims: result.dims, threadId: result.threadId }
    },
    async describe () {
      const result = await run({ kind: 'describe' }, undefined)
      if (result.kind !== 'describe') throw new Error('worker answered a describe task with an inference')
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
        for (const r of results) seen.add(r.threadId)
      }
    },
    stats () {
      return { workers, queued: piscina.queueSize, completed: piscina.completed, utilization: piscina.utilization }
    },
    async close () {
      await piscina.close({ force: true })
    }
  }
}
