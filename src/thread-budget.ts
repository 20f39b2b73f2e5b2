// How the server's threads divide the machine's cores, decided in one place (README "Threads").
// Measured on the team's ensemble and the demo model: one ONNX Runtime thread per worker and one
// worker per core beat fewer workers with more threads; decoding runs on the libuv pool, so that
// pool needs a thread per core too, or an 8-core machine decodes at most 4 photos at a time.

/** Node's own libuv pool size; the pool never goes below it (fs, dns and zlib share it). */
export const NODE_UV_THREADPOOL = 4

export interface ThreadBudget {
  /** Cores this process may use (CPU affinity included: `taskset` narrows it). */
  cores: number
  /** Inference workers, each with one ONNX Runtime session. */
  workers: number
  /** ONNX Runtime intra-op threads per worker. */
  intraOpThreads: number
  /** libuv's pool, where sharp decodes: at most this many photos are decoded at once. */
  uvThreadpool: number
  /** libvips threads per decode: one, since `uvThreadpool` decodes already run side by side. */
  decodeThreads: number
  /** Nice value of every thread but the main one, so the event loop runs first (src/thread-priority.ts). */
  backgroundNice: number
  /** Why the budget does not match the machine, when it does not (logged at boot, in /health). */
  warnings: string[]
}

/** The libuv pool for `cores`: a decode per core, never below Node's default. */
export function uvThreadpoolSize (cores: number): number {
  return Math.max(NODE_UV_THREADPOOL, cores)
}

const LIBUV_MAX_THREADPOOL = 1024

/** What libuv makes of UV_THREADPOOL_SIZE (threadpool.c: an unsigned atoi, 0 → 1, capped at 1024). */
export function libuvPoolSize (value: string): number {
  const n = Number.parseInt(value, 10)
  if (Number.isNaN(n) || n === 0) return 1
  return n < 0 ? LIBUV_MAX_THREADPOOL : Math.min(n, LIBUV_MAX_THREADPOOL)
}

export interface ThreadSettings {
  cores: number
  /** WORKERS and INTRA_OP_THREADS when set; otherwise derived from the cores. */
  workers?: number
  intraOpThreads?: number
  /** BACKGROUND_NICE; 0 when unset. */
  backgroundNice?: number
  /** UV_THREADPOOL_SIZE as the process started with it (set by dist/preload.cjs, or by hand). */
  uvThreadpoolEnv?: string
}

export function threadBudget ({ cores, workers, intraOpThreads, backgroundNice = 0, uvThreadpoolEnv }: ThreadSettings): ThreadBudget {
  const budget = {
    cores,
    workers: workers ?? cores,
    intraOpThreads: intraOpThreads ?? 1,
    uvThreadpool: uvThreadpoolEnv === undefined ? NODE_UV_THREADPOOL : libuvPoolSize(uvThreadpoolEnv),
    decodeThreads: 1,
    backgroundNice
  }
  const warnings: string[] = []
  const inference = budget.workers * budget.intraOpThreads
  if (inference > cores) warnings.push(`WORKERS × INTRA_OP_THREADS = ${inference} threads of inference on ${cores} cores: they take turns, and each inference gets slower`)
  if (inference < cores) warnings.push(`WORKERS × INTRA_OP_THREADS = ${inference} threads of inference on ${cores} cores: ${cores - inference} cores never run inference`)
  if (uvThreadpoolEnv === undefined) {
    warnings.push(`UV_THREADPOOL_SIZE was not set at start (start with node --require ./dist/preload.cjs): libuv decodes at most ${NODE_UV_THREADPOOL} photos at a time`)
  } else if (budget.uvThreadpool < Math.min(budget.workers, cores)) {
    warnings.push(`UV_THREADPOOL_SIZE=${budget.uvThreadpool} decodes fewer photos at a time than the ${Math.min(budget.workers, cores)} cores the workers use`)
  }
  return { ...budget, warnings }
}
