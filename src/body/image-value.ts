import { AppError } from '../errors.js'
import { Base64Decoder } from './base64.js'

const DATA = Buffer.from('data:')
// "data:image/jpeg;base64," is 23 bytes; a header this long is not a photo's data: URL.
const MAX_HEADER = 256

/**
 * The text of a base64 image value, fed in pieces: an optional `data:<type>;base64,` prefix is
 * dropped (their clients sometimes kept it), the rest is decoded as it arrives.
 */
export class ImageValue {
  readonly field: string
  readonly #decoder: Base64Decoder
  // The first bytes, held until it is known whether they start a data: URL.
  #head: Buffer | undefined = Buffer.alloc(0)

  constructor (field: string, maxBytes: number) {
    this.field = field
    this.#decoder = new Base64Decoder(field, maxBytes)
  }

  push (bytes: Uint8Array): void {
    if (this.#head === undefined) return this.#decoder.push(bytes)
    const head = Buffer.concat([this.#head, bytes])
    const prefix = Math.min(head.length, DATA.length)
    if (head.compare(DATA, 0, prefix, 0, prefix) !== 0) return this.#flush(head)
    const comma = head.indexOf(0x2c)
    if (comma === -1) {
      if (head.length > MAX_HEADER) throw this.#badUrl()
      this.#head = head
      return
    }
    if (!/;base64$/i.test(head.toString('latin1', 0, comma))) throw this.#badUrl()
    this.#flush(head.subarray(comma + 1))
  }

  /** The decoded image bytes. */
  end (): Buffer {
    if (this.#head !== undefined) {
      // A value shorter than "data:" can still be base64 (or empty); a bare header is not.
      if (this.#head.length >= DATA.length) throw this.#badUrl()
      this.#flush(this.#head)
    }
    return this.#decoder.end()
  }

  #flush (bytes: Buffer): void {
    this.#head = undefined
    this.#decoder.push(bytes)
  }

  #badUrl (): AppError {
    return new AppError('BAD_REQUEST', `"${this.field}" is a data: URL that is not "data:image/…;base64,<base64>".`)
  }
}
