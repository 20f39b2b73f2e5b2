// Live model replacement: a new version is prepared beside the serving one and switched in for
// new requests in one step; the old pool closes once the requests that took it are done.
import type { SwapMode } from '../config.js'
import type { Readiness } from '../readiness.js'
import type { StoreLog } from '../models/s3-store.js'
import type { ResolvedBundle } from '../models/store.js'
import type { Candidate, SourceVersion, WatchedSource } from '../models/versions.js'
import type { Engine } from './engine.js'
import type { InferencePool } from './pool.js'
import type { ModelSlot } from './slot.js'

/** The store's two pino methods, and error for a refused version. */
export interface SwapLog extends StoreLog {
  error: (obj: object, msg: string) => void
}

export interface SwapperOptions {
  mode: SwapMode
  readiness: Readiness
  /** The slot this swapper fills (the readiness' primary or canary). */
  slot: ModelSlot
  source: WatchedSource
  /**
   * The canary's: check() also loads the first version into the empty slot, and keeps trying
   * one that changes. The primary's first version is boot's to load, with its retries.
   */
  loadsFirst?: boolean
  /**
   * Starts and warms a pool on a bundle (startEngine); `onPool` hands the pool out first.
   * `workers` overrides WORKERS (1 for MODEL_SWAP=restart's trial load).
   */
  start: (bundle: ResolvedBundle, onPool: (pool: InferencePool) => void, workers?: number) => Promise<Engine>
  /** MODEL_SWAP=restart, once a new version is in the cache: drain and exit for the supervisor. */
  restart: (reason: string) => void
  log: SwapLog
  now?: () => number
}

const versionOf = (engine: Engine) => engine.model.spec.version
const round = (ms: number) => Math.round(ms)

/**
 * One swap at a time: a check that arrives during a swap makes that swap check again when it
 * ends, so a version pushed meanwhile waits and then replaces the one just swapped in. A version
 * that failed is not tried again until the source changes.
 */
export class ModelSwapper {
  readonly #o: SwapperOptions
  readonly #now: () => number
  #serving: { identity: string, dir: string } | undefined
  #refused: string | undefined
  #running: Promise<void> | undefined
  #again = false
  #closed = false
  // A pool being started: shutdown waits for it, since exiting while workers create their
  // sessions can abort the process (DESIGN.md toolchain notes).
  #warming: Promise<unknown> | undefined

  constructor (options: SwapperOptions) {
    this.#o = options
    this.#now = options.now ?? (() => performance.now())
  }

  /** What boot loaded: the version later checks compare against. */
  adopt (candidate: Candidate): void {
    this.#serving = { identity: candidate.identity, dir: candidate.bundle.dir }
  }

  /**
   * Checks the source once (and swaps); never rejects. Before boot finished there is nothing to
   * replace, unless this swapper `loadsFirst` (the canary's, whose first version it loads).
   */
  async check (): Promise<void> {
    if (this.#closed || (this.#serving === undefined && this.#o.loadsFirst !== true)) return
    if (this.#running !== undefined) {
      this.#again = true
      return await this.#running
    }
    this.#running = this.#loop().finally(() => { this.#running = undefined })
    await this.#running
  }

  /**
   * Stops further swaps. Waits for a pool being started (the readiness closes it), not for a
   * download in progress: that one is dropped (its staging folder is cleaned at the next boot).
   */
  async close (): Promise<void> {
    this.#closed = true
    await this.#warming
  }

  async #loop (): Promise<void> {
    do {
      this.#again = false
      await this.#checkOnce()
    } while (this.#again && !this.#closed)
  }

  /**
   * MODEL_SWAP=restart loads the version once in one worker (labels, warm-up, NaN check) before
   * restarting for it: the restarted process would find a version that does not load only after
   * it stopped serving the good one, with nothing to fall back to. One session, not a pool.
   */
  async #trial (bundle: ResolvedBundle): Promise<void> {
    const { readiness } = this.#o
    const starting = this.#o.start(bundle, (pool) => readiness.trackPool(pool), 1)
    this.#warming = starting.catch(() => {})
    const { pool } = await starting
    await pool.close()
    readiness.untrackPool(pool)
  }

  async #checkOnce (): Promise<void> {
    const { slot, log } = this.#o
    let found: SourceVersion
    try {
      found = await this.#o.source.probe()
    } catch (err) {
      const reason = (err as Error).message
      log.warn({ slot: slot.name, reason }, slot.engine === undefined ? 'model check failed; nothing loaded in this slot yet' : 'model check failed; serving the current version')
      // An empty slot has no version to show: /health says why it stays empty.
      if (slot.engine === undefined) slot.pending = { version: 'unknown', error: reason }
      return
    }
    const serving = this.#serving
    if (found.identity === serving?.identity) {
      // The source went back to what is served (e.g. a bad push was undone).
      slot.pending = undefined
      this.#refused = undefined
      return
    }
    if (found.identity === this.#refused) return
    await this.#swap(found, serving)
  }

  async #swap (found: SourceVersion, serving: { identity: string, dir: string } | undefined): Promise<void> {
    const { readiness, slot, log, mode } = this.#o
    const t0 = this.#now()
    let convertAt: number | undefined
    let resolvedAt: number | undefined
    let warmedAt: number | undefined
    let version = found.version
    slot.pending = { version }
    const old = slot.engine
    const from = old === undefined ? undefined : versionOf(old)
    const durations = () => {
      // A phase that did not happen (or had not started when it failed) counts 0.
      const end = this.#now()
      const resolved = resolvedAt ?? end
      return {
        downloadMs: round((convertAt ?? resolved) - t0),
        convertMs: round(resolved - (convertAt ?? resolved)),
        warmMs: round((warmedAt ?? end) - resolved)
      }
    }
    try {
      const replacing = serving === undefined ? undefined : { keep: serving.dir }
      const candidate = await this.#o.source.resolve(undefined, () => { convertAt ??= this.#now() }, { replacing })
      resolvedAt = this.#now()
      version = candidate.bundle.spec?.version ?? version
      if (this.#closed) return
      // An empty slot (the canary's first version) has no pool to give up: it loads either way.
      if (mode === 'restart' && old !== undefined) {
        await this.#trial(candidate.bundle)
        warmedAt = this.#now()
        if (this.#closed) return
        slot.swaps.restart++
        slot.pending = { version }
        log.info({ slot: slot.name, from, to: version, ...durations() }, 'new model version cached; restarting to load it (MODEL_SWAP=restart)')
        this.#closed = true
        this.#o.restart(`restarting to load model version ${version} (MODEL_SWAP=restart)`)
        return
      }
      const starting = this.#o.start(candidate.bundle, (pool) => readiness.trackPool(pool))
      this.#warming = starting.catch(() => {})
      const engine = await starting
      warmedAt = this.#now()
      // Stopping: the readiness closes every pool it tracks, this one included.
      if (!readiness.replace(slot, engine)) return
      this.#serving = { identity: candidate.identity, dir: candidate.bundle.dir }
      this.#refused = undefined
      slot.pending = undefined
      version = versionOf(engine)
      if (old === undefined) {
        log.info({ slot: slot.name, version, ...durations(), totalMs: round(this.#now() - t0) }, 'model loaded')
        return
      }
      slot.swaps.ok++
      const drainStart = this.#now()
      const running = slot.leased(old)
      await slot.drained(old)
      await old.pool.close().then(() => readiness.untrackPool(old.pool), (err: unknown) => {
        // Its workers finish their inferences and the pool then closes itself (pool.ts).
        log.warn({ slot: slot.name, reason: (err as Error).message }, 'the replaced model\'s pool is still closing')
      })
      log.info({ slot: slot.name, from, to: version, ...durations(), drainMs: round(this.#now() - drainStart), drainedRequests: running, totalMs: round(this.#now() - t0) }, 'model swapped')
    } catch (err) {
      if (this.#closed) return
      const reason = (err as Error).message
      this.#refused = found.identity
      slot.pending = { version, error: reason }
      slot.swaps.failed++
      log.error({ slot: slot.name, from, to: version, reason, ...durations() }, old === undefined ? 'model version refused; this slot stays empty' : 'new model version refused; serving the current version')
    }
  }
}
