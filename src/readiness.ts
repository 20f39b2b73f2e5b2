import type { Engine } from './inference/engine.js'
import { Leases } from './inference/leases.js'
import type { InferencePool } from './inference/pool.js'
import type { StoreCounters } from './models/counters.js'
import type { DownloadProgress } from './models/store.js'

export type ReadinessStatus = 'starting' | 'ready' | 'error' | 'stopping'
/** What a 'starting' server is doing (in /health as `phase`). */
export type BootPhase = 'loading' | 'downloading' | 'converting' | 'warming'
/** How a swap ended, as `shine_model_swaps_total{result}` counts it. */
export type SwapResult = 'ok' | 'failed' | 'restart'

/** A version that was found and refused (or is being prepared), shown in /health as model.pending. */
export interface PendingVersion {
  version: string
  /** Absent while the version is being prepared. */
  error?: string
}

/** One engine taken for one analysis; `release` lets a swap close the pool behind it. */
export interface Lease {
  engine: Engine
  release: () => void
}

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
  pending: PendingVersion | undefined
  readonly swaps: Record<SwapResult, number> = { ok: 0, failed: 0, restart: 0 }
  #engine: Engine | undefined
  // Every pool that exists: the serving one, one warming or one draining during a swap.
  readonly #pools = new Set<InferencePool>()
  readonly #leases = new Leases<Engine>()
  #closed = false

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
    // A swap that started its pool after close() must not leave it running into process.exit.
    if (this.#closed) void pool.close().catch(() => {})
    else this.#pools.add(pool)
  }

  /** A pool that was closed: nothing left to close at shutdown. */
  untrackPool (pool: InferencePool): void {
    this.#pools.delete(pool)
  }

  /** The serving engine for one analysis, held until `release()`. */
  lease (): Lease | undefined {
    const engine = this.engine
    return engine === undefined ? undefined : { engine, release: this.#leases.acquire(engine) }
  }

  /** Analyses holding `engine` now. */
  leased (engine: Engine): number {
    return this.#leases.held(engine)
  }

  /** Resolves once no analysis holds `engine` any more. */
  async drained (engine: Engine): Promise<void> {
    await this.#leases.idle(engine)
  }

  /**
   * Makes `engine` the one new requests get, in one step; returns the one it replaced. While
   * stopping nothing is replaced (undefined): the caller closes the engine it brought.
   */
  replace (engine: Engine): Engine | undefined {
    if (this.status !== 'ready') return undefined
    const old = this.#engine
    this.#engine = engine
    this.#pools.add(engine.pool)
    return old
  }

  // Once stopping, boot news no longer matters: /health keeps saying 'stopping' to the end.
  ready (engine: Engine): void {
    if (this.status === 'stopping') return
    this.#engine = engine
    this.#pools.add(engine.pool)
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

  stopping (reason = 'shutting down'): void {
    this.status = 'stopping'
    this.reason = reason
    this.phase = undefined
  }

  async close (): Promise<void> {
    this.#closed = true
    const pools = [...this.#pools]
    this.#pools.clear()
    await Promise.all(pools.map(async (pool) => await pool.close()))
  }
}
