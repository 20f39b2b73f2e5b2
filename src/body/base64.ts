import { AppError } from '../errors.js'
import { sizeOf } from './stream.js'

// Per byte: 1 = a base64 digit (standard or URL-safe alphabet), 2 = skipped (line breaks and
// spaces, as MIME and PEM encoders insert), 3 = padding; 0 = not base64.
const CLASS = new Uint8Array(256)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') CLASS[c.charCodeAt(0)] = 1
for (const c of ' \t\r\n') CLASS[c.charCodeAt(0)] = 2
CLASS['='.charCodeAt(0)] = 3

const PAD = 0x3d
const SPACES = [0x0a, 0x0d, 0x20, 0x09]
const SPACE_RUNS = /[\t\n\r ]+/g
const DIGITS = /^[A-Za-z0-9+/_-]*$/

// A chunk is decoded in pieces of this many digits, so the work per call stays bounded.
const BLOCK = 64 * 1024

/**
 * Decodes base64 as it arrives, chunk by chunk: standard or URL-safe alphabet, padded or not,
 * with line breaks. Anything else is a 400 naming `field` (Buffer.from(…, 'base64') would
 * silently skip it and decode garbage). `maxBytes` is the limit on the decoded size.
 */
export class Base64Decoder {
  readonly #field: string
  readonly #maxBytes: number
  // Digits not yet decoded (always fewer than 4 between calls), kept across chunks.
  #carry = ''
  #padded = false
  #bytes = 0
  readonly #out: Buffer[] = []

  constructor (field: string, maxBytes: number) {
    this.#field = field
    this.#maxBytes = maxBytes
  }

  /** Feeds raw bytes of the encoded text (ASCII). */
  push (chunk: Uint8Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    // Fast path, all native (a per-byte JS loop costs ~10× more of the event loop): drop line
    // breaks, decode, and check by encoding back. Anything unusual takes the checked path below.
    if (!this.#padded && bytes.indexOf(PAD) === -1) {
      const spaced = SPACES.some((c) => bytes.indexOf(c) !== -1)
      const digits = spaced ? bytes.toString('latin1').replace(SPACE_RUNS, '') : bytes.toString('latin1')
      const text = this.#carry + digits
      const whole = text.length - (text.length % 4)
      const quanta = text.slice(0, whole)
      const decoded = Buffer.from(quanta, 'base64')
      const rest = text.slice(whole)
      if (DIGITS.test(rest) && decoded.length * 4 === whole * 3 && (decoded.toString('base64') === quanta || decoded.toString('base64url') === quanta)) {
        this.#carry = rest
        if (whole > 0) this.#emit(decoded)
        return
      }
    }
    this.#pushChecked(bytes)
  }

  // Byte by byte: mixed alphabets, padding, and the exact reason when something is not base64.
  #pushChecked (chunk: Buffer): void {
    const digits = Buffer.allocUnsafe(chunk.length)
    let n = 0
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      const kind = CLASS[byte]
      if (kind === 1) {
        if (this.#padded) throw this.#invalid('data after the "=" padding')
        digits[n++] = byte
      } else if (kind === 3) {
        this.#padded = true
      } else if (kind === 0) {
        throw this.#invalid(`"${byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`}" is not a base64 character`)
      }
    }
    for (let at = 0; at < n; at += BLOCK) this.#decode(digits.toString('latin1', at, Math.min(n, at + BLOCK)))
  }

  /** The decoded bytes; throws if the text stopped in the middle of a quantum. */
  end (): Buffer {
    // One digit left over carries 6 bits: not even one byte, so the text was cut or mangled.
    if (this.#carry.length === 1) throw this.#invalid('it ends with a lone character')
    if (this.#carry.length > 0) this.#emit(Buffer.from(this.#carry, 'base64'))
    this.#carry = ''
    return Buffer.concat(this.#out)
  }

  #decode (digits: string): void {
    const text = this.#carry + digits
    const whole = text.length - (text.length % 4)
    this.#carry = text.slice(whole)
    // Node's decoder reads both alphabets; every character here is a digit.
    if (whole > 0) this.#emit(Buffer.from(text.slice(0, whole), 'base64'))
  }

  #emit (bytes: Buffer): void {
    this.#bytes += bytes.length
    if (this.#bytes > this.#maxBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The decoded image in "${this.#field}" is larger than ${sizeOf(this.#maxBytes)}.`)
    }
    this.#out.push(bytes)
  }

  #invalid (why: string): AppError {
    return new AppError('BAD_REQUEST', `"${this.#field}" is not valid base64: ${why}.`)
  }
}
