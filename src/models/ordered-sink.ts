import type { Hash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'

/** One ranged GET of a download; `received` is how far it got, for resuming. */
export interface Part {
  index: number
  start: number
  /** Exclusive. */
  end: number
  received: number
  buffered: Buffer[]
  done: boolean
}

export function planParts (size: number, streams: number, partSize: number): Part[] {
  const part = (index: number, start: number, end: number): Part => ({ index, start, end, received: 0, buffered: [], done: false })
  if (streams <= 1 || size <= partSize) return [part(0, 0, size)]
  return Array.from({ length: Math.ceil(size / partSize) }, (_, i) => part(i, i * partSize, Math.min(size, (i + 1) * partSize)))
}

// Bytes are written in batches of this size; past WRITE_BACKLOG unwritten bytes the network waits.
const WRITE_BATCH = 1 << 20
const WRITE_BACKLOG = 8 << 20

/**
 * Hashes and appends bytes strictly in file order, so a download in parallel ranges is verified
 * on the fly like a single stream, without a second pass over the file. A range that arrives
 * ahead of its turn waits in memory; the window of ranges in flight bounds that memory.
 */
export class OrderedSink {
  #file: FileHandle
  #hashes: Hash[]
  #parts: Part[]
  #head = 0
  #position = 0
  #batch: Buffer[] = []
  #batchBytes = 0
  #backlog = 0
  #writes: Promise<void> = Promise.resolve()
  #waiters: Array<{ head: number, resolve: () => void }> = []

  constructor (file: FileHandle, hashes: Hash[], parts: Part[]) {
    this.#file = file
    this.#hashes = hashes
    this.#parts = parts
  }

  /** Resolves when every range before `index` is hashed, so at most a window's worth waits. */
  async headReaches (index: number): Promise<void> {
    if (this.#head >= index) return
    await new Promise<void>((resolve) => this.#waiters.push({ head: index, resolve }))
  }

  /** Returns a promise to await when too many bytes wait for the disk. */
  push (part: Part, chunk: Buffer): Promise<void> | undefined {
    if (part.index !== this.#head) {
      part.buffered.push(chunk)
      return undefined
    }
    this.#take(chunk)
    return this.#backlog > WRITE_BACKLOG ? this.#writes : undefined
  }

  complete (part: Part): void {
    part.done = true
    while (this.#parts[this.#head]?.done === true) {
      this.#head++
      const next = this.#parts[this.#head]
      if (next !== undefined) {
        for (const chunk of next.buffered) this.#take(chunk)
        next.buffered = []
      }
    }
    this.#waiters = this.#waiters.filter((w) => (w.head <= this.#head ? (w.resolve(), false) : true))
  }

  /** Lets workers blocked on the window give up after a failure elsewhere. */
  release (): void {
    for (const w of this.#waiters) w.resolve()
    this.#waiters = []
  }

  async finish (): Promise<void> {
    this.#flush()
    await this.#writes
    // fsync before the caller renames: after a power cut the cache holds the whole file or none.
    await this.#file.sync()
  }

  #take (chunk: Buffer): void {
    for (const hash of this.#hashes) hash.update(chunk)
    this.#batch.push(chunk)
    this.#batchBytes += chunk.length
    if (this.#batchBytes >= WRITE_BATCH) this.#flush()
  }

  #flush (): void {
    if (this.#batchBytes === 0) return
    const buffers = this.#batch
    const bytes = this.#batchBytes
    const position = this.#position
    this.#batch = []
    this.#batchBytes = 0
    this.#position += bytes
    this.#backlog += bytes
    this.#writes = this.#writes.then(async () => {
      const { bytesWritten } = await this.#file.writev(buffers, position)
      /* c8 ignore next -- a short write to a regular file only happens when the disk is full */
      if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`)
      this.#backlog -= bytes
    })
    // A failed write (disk full) surfaces in finish() or at the next backpressure wait; until
    // then it must not count as an unhandled rejection, which would end the process.
    this.#writes.catch(() => {})
  }
}
