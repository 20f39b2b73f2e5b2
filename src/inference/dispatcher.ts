import { AppError } from '../errors.js'

export interface DispatcherOptions<T, R> {
  /** Tasks started at once (one per worker). */
  concurrency: number
  /** Tasks allowed to wait; beyond `concurrency + maxWaiting` callers get OVERLOADED at once. */
  maxWaiting: number
  /** Deadline per task, from submission. */
  timeoutMs: number
  start: (task: T) => Promise<R>
}

interface Job<T, R> {
  task: T
  settled: boolean
  resolve: (value: R) => void
  reject: (err: unknown) => void
}

function abortError (): Error {
  const err = new Error('the caller stopped waiting')
  err.name = 'AbortError'
  return err
}

/**
 * A bounded FIFO in front of the workers that never interrupts a running task: a worker thread
 * terminated inside onnxruntime's session.run aborts the whole process (Napi::Error → std::terminate,
 * seen under load when clients disconnected). A task whose caller gave up or whose deadline
 * passed is dropped if it has not started; if it has, the caller is answered at once, the
 * result is discarded, and the slot stays taken until the worker is really free.
 */
export class Dispatcher<T, R> {
  readonly #options: DispatcherOptions<T, R>
  readonly #waiting: Array<Job<T, R>> = []
  #running = 0
  #closed: (() => Error) | undefined
  readonly #idle: Array<() => void> = []

  constructor (options: DispatcherOptions<T, R>) {
    this.#options = options
  }

  /** Tasks handed to a worker and not yet finished there, whether or not anyone still waits. */
  get running (): number { return this.#running }
  get waiting (): number { return this.#waiting.length }
  get capacity (): number { return this.#options.concurrency + this.#options.maxWaiting }

  async run (task: T, signal?: AbortSignal): Promise<R> {
    if (this.#closed !== undefined) throw this.#closed()
    if (signal?.aborted === true) throw abortError()
    if (this.#running + this.#waiting.length >= this.capacity) throw new AppError('OVERLOADED')
    return await new Promise<R>((resolve, reject) => {
      const settle = (finish: () => void) => {
        if (job.settled) return
        job.settled = true
        clearTimeout(deadline)
        signal?.removeEventListener('abort', onAbort)
        const queued = this.#waiting.indexOf(job)
        if (queued !== -1) this.#waiting.splice(queued, 1)
        finish()
      }
      const job: Job<T, R> = {
        task,
        settled: false,
        resolve: (value) => settle(() => resolve(value)),
        reject: (err) => settle(() => reject(err))
      }
      const onAbort = () => job.reject(abortError())
      const deadline = setTimeout(() => job.reject(new AppError('INFERENCE_TIMEOUT')), this.#options.timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(job)
      this.#next()
    })
  }

  /**
   * Refuses new tasks and fails the waiting ones with `reason()`; resolves once no task runs,
   * abandoned ones included. Nothing is interrupted: the caller closes the workers afterwards.
   */
  async close (reason: () => Error): Promise<void> {
    this.#closed ??= reason
    for (const job of [...this.#waiting]) job.reject(this.#closed())
    while (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  #next (): void {
    while (this.#running < this.#options.concurrency && this.#waiting.length > 0) {
      const job = this.#waiting.shift()!
      this.#running++
      this.#options.start(job.task).then(job.resolve, job.reject).finally(() => {
        this.#running--
        if (this.#running === 0) for (const idle of this.#idle.splice(0)) idle()
        this.#next()
      })
    }
  }
}
