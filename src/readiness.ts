import type { Engine } from './inference/engine.js'
import type { InferencePool } from './inference/pool.js'
import type { StoreCounters } from './models/counters.js'
import type { DownloadProgress } from './models/store.js'

export type ReadinessStatus = 'starting' | 'ready' | 'error' | 'stopping'
/** What a 'starting' server is doing (in /health as `phase`). */
export type BootPhase = 'loading' | 'downloading' | 'converting' | 'warming'

/**
 * Boot progress as /health reports it. server.ts flips it while it loads the model; routes only
 * read it. It also owns the pool's lifetime, so closing the app closes the pool at any stage.
 */
export class Readiness {
  status: ReadinessStatus = 'starting'
  reason = 'starting up'
  phase: BootPhase | undefined
  progress: DownloadProgress | undefined
  /** The S3 model store's counters, when the model comes from S3 (shown in /health). */
  store: StoreCounters | undefined
  readonly startedAt = Date.now()
  /** Seconds from process start to ready (model load and warm-up). */
  loadSeconds: number | undefined
  #engine: Engine | undefined
  #pool: InferencePool | undefined

  /** The engine while it can serve: ready, or stopping with requests still in flight. */
  get engine (): Engine | undefined {
    return this.status === 'ready' || this.status === 'stopping' ? this.#engine : undefined
  }

  starting (reason: string, progress?: DownloadProgress, phase?: BootPhase): void {
    if (this.status === 'stopping') return
    this.status = 'starting'
    this.reason = reason
    this.progress = progress
    this.phase = phase
  }

  trackPool (pool: InferencePool): void {
    this.#pool = pool
  }

  // Once stopping, boot news no longer matters: /health keeps saying 'stopping' to the end.
  ready (engine: Engine): void {
    if (this.status === 'stopping') return
    this.#engine = engine
    this.#pool = engine.pool
    this.status = 'ready'
    this.reason = 'ready'
    this.loadSeconds = (Date.now() - this.startedAt) / 1000
    this.progress = undefined
    this.phase = undefined
  }

  failed (reason: string): void {
    if (this.status === 'stopping') return
    this.status = 'error'
    this.reason = reason
    this.progress = undefined
    this.phase = undefined
  }

  stopping (): void {
    this.status = 'stopping'
    this.reason = 'shutting down'
    this.phase = undefined
  }

  async close (): Promise<void> {
    const pool = this.#pool
    this.#pool = undefined
    await pool?.close()
  }
}
