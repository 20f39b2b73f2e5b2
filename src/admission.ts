/**
 * Counts analyses in progress (reading, decoding, waiting for or running inference) and refuses
 * beyond a fixed number, so memory stays bounded whatever the offered load.
 */
export class Admission {
  readonly capacity: number
  #active = 0

  constructor (capacity: number) {
    this.capacity = capacity
  }

  /** Takes a slot if one is free; the caller must call the returned release exactly once. */
  tryEnter (): (() => void) | undefined {
    if (this.#active >= this.capacity) return undefined
    this.#active++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active--
    }
  }
}
