// Re-checks the model source on a timer. Jitter keeps a fleet that booted together from
// polling S3 in step (and from swapping in step).
const JITTER = 0.2

/** `baseMs` ±20 %: uniform in [0.8, 1.2) × baseMs. */
export function jittered (baseMs: number, random: () => number = Math.random): number {
  return Math.round(baseMs * (1 - JITTER + 2 * JITTER * random()))
}

export interface Timer {
  clear: () => void
}

export interface WatcherOptions {
  /** 0 = no timer: only trigger() checks. */
  intervalMs: number
  /** Never rejects: the swapper reports its own failures. */
  check: () => Promise<void>
  random?: () => number
  /** Tests drive the clock; by default an unref'd setTimeout, so the timer never holds the process. */
  setTimer?: (fn: () => void, ms: number) => Timer
}

const realTimer = (fn: () => void, ms: number): Timer => {
  const timer = setTimeout(fn, ms)
  timer.unref()
  return { clear: () => clearTimeout(timer) }
}

/** Calls `check` every jittered interval, and at once on trigger() (SIGHUP). */
export class Watcher {
  readonly #o: Required<WatcherOptions>
  #timer: Timer | undefined
  #stopped = false

  constructor (options: WatcherOptions) {
    this.#o = { random: Math.random, setTimer: realTimer, ...options }
  }

  start (): void {
    this.#schedule()
  }

  /** Checks now; the next timed check is counted from the end of this one. */
  async trigger (): Promise<void> {
    if (this.#stopped) return
    this.#timer?.clear()
    this.#timer = undefined
    await this.#o.check()
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    this.#timer?.clear()
    this.#timer = undefined
  }

  #schedule (): void {
    if (this.#stopped || this.#o.intervalMs === 0 || this.#timer !== undefined) return
    this.#timer = this.#o.setTimer(() => {
      this.#timer = undefined
      void this.trigger()
    }, jittered(this.#o.intervalMs, this.#o.random))
  }
}
