import type { Engine } from './engine.js'
import { Leases } from './leases.js'

/** Which model a slot holds: the one every analysis gets, or the canary share's. */
export type SlotName = 'primary' | 'canary'
/** How a swap ended, as `shine_model_swaps_total{result}` counts it. */
export type SwapResult = 'ok' | 'failed' | 'restart'

/** A version that was found and refused (or is being prepared), shown in /health as pending. */
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
 * One served model and its swap state: the engine new analyses get, who still holds the ones it
 * replaced, the version being prepared or refused, and the count of swaps. The readiness holds
 * one for the primary model and one for the canary; each has its own swapper.
 */
export class ModelSlot {
  readonly name: SlotName
  pending: PendingVersion | undefined
  readonly swaps: Record<SwapResult, number> = { ok: 0, failed: 0, restart: 0 }
  #engine: Engine | undefined
  readonly #leases = new Leases<Engine>()

  constructor (name: SlotName) {
    this.name = name
  }

  /** The engine new analyses get (undefined until one loaded). */
  get engine (): Engine | undefined {
    return this.#engine
  }

  /** Makes `engine` the one new analyses get, in one step (the one it replaces drains by its leases). */
  install (engine: Engine): void {
    this.#engine = engine
  }

  lease (): Lease | undefined {
    const engine = this.#engine
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
}
