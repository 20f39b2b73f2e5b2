import type { Engine } from './inference/engine.js'
import { inCanary } from './inference/canary.js'
import type { InferencePool } from './inference/pool.js'
import { ModelSlot, type Lease } from './inference/slot.js'
import type { StoreCounters } from './models/counters.js'
import type { DownloadProgress } from './models/store.js'

export type { Lease, PendingVersion, SwapResult } from './inference/slot.js'

export type ReadinessStatus = 'starting' | 'ready' | 'error' | 'stopping'
/** What a 'starting' server is doing (in /health as `phase`). */
export type BootPhase = 'loading' | 'downloading' | 'converting' | 'warming'

export interface ReadinessOptions {
  /** MODEL_CANARY_PERCENT when a canary model is configured; no canary slot without it. */
  canaryPercent?: number
}

/**
 * Boot progress as /health reports it. server.ts flips it while it loads the model; routes only
 * read it. It also owns the pools' lifetime, so closing the app closes every pool at any stage.
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
  /** The model every analysis gets unless the canary takes it; readiness is about this one. */
  readonly primary = new ModelSlot('primary')
  /** The canary model, when one is configured: it never decides readiness. */
  readonly canary: ModelSlot | undefined
  readonly canaryPercent: number
  // Every pool that exists: the serving ones, one warming or one draining during a swap.
  readonly #pools = new Set<InferencePool>()
  #closed = false

  constructor ({ canaryPercent }: ReadinessOptions = {}) {
    this.canary = canaryPercent === undefined ? undefined : new ModelSlot('canary')
    this.canaryPercent = canaryPercent ?? 0
  }

  /** Both slots, primary first (the canary only when configured). */
  get slots (): ModelSlot[] {
    return this.canary === undefined ? [this.primary] : [this.primary, this.canary]
  }

  /** The primary engine while it can serve: ready, or stopping with requests still in flight. */
  get engine (): Engine | undefined {
    return this.#serving ? this.primary.engine : undefined
  }

  get #serving (): boolean {
    return this.status === 'ready' || this.status === 'stopping'
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

  /**
   * The engine for one analysis, held until `release()`: the canary's for the clients in its
   * share once a canary version serves, else the primary's.
   */
  lease (clientKey?: string): Lease | undefined {
    if (!this.#serving) return undefined
    const { canary } = this
    if (canary?.engine !== undefined && clientKey !== undefined && inCanary(clientKey, this.canaryPercent)) return canary.lease()
    return this.primary.lease()
  }

  /**
   * Makes `engine` the one new requests of `slot` get, in one step. False while stopping (or
   * before the primary is ready): nothing is replaced and the caller closes the engine it brought.
   */
  replace (slot: ModelSlot, engine: Engine): boolean {
    if (this.status !== 'ready') return false
    slot.install(engine)
    this.#pools.add(engine.pool)
    return true
  }

  // Once stopping, boot news no longer matters: /health keeps saying 'stopping' to the end.
  ready (engine: Engine): void {
    if (this.status === 'stopping') return
    this.primary.install(engine)
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
