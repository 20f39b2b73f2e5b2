/**
 * Counts who still uses an engine after it stopped being the one new requests get. A swap closes
 * the old pool only once every request that took it has finished: a pool closed under a request
 * between its decode and its inference would answer that request 503.
 */
export class Leases<T extends object> {
  readonly #held = new Map<T, number>()
  readonly #idle = new Map<T, Array<() => void>>()

  /** Marks one use of `item`; the returned function ends it (calling it twice ends it once). */
  acquire (item: T): () => void {
    this.#held.set(item, (this.#held.get(item) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = this.#held.get(item)! - 1
      if (left > 0) {
        this.#held.set(item, left)
        return
      }
      this.#held.delete(item)
      for (const resolve of this.#idle.get(item) ?? []) resolve()
      this.#idle.delete(item)
    }
  }

  held (item: T): number {
    return this.#held.get(item) ?? 0
  }

  /** Resolves once nobody holds `item` (at once if nobody does). */
  async idle (item: T): Promise<void> {
    if (this.held(item) === 0) return
    await new Promise<void>((resolve) => {
      const waiting = this.#idle.get(item) ?? []
      waiting.push(resolve)
      this.#idle.set(item, waiting)
    })
  }
}
