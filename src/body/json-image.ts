import { AppError } from '../errors.js'
import { ImageValue } from './image-value.js'

/** The fields their clients put the photo in (CLIENTS.md): `image`, later `image_data`. */
export const IMAGE_FIELDS: readonly string[] = ['image', 'image_data']

// Everything but the photo (user_demographics and the like) is small; as in forms, 64 KiB.
const MAX_OTHER_BYTES = 64 * 1024
const MAX_KEY_BYTES = 200

const QUOTE = 0x22
const BACKSLASH = 0x5c
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
// JSON escapes inside the photo's string: the ones an encoder uses for line breaks and "/".
// Any other escaped byte stands for itself (and is then refused as not base64).
const ESCAPED = Uint8Array.from({ length: 256 }, (_, b) => b)
ESCAPED[0x6e] = 0x0a // \n
ESCAPED[0x72] = 0x0d // \r
ESCAPED[0x74] = 0x09 // \t

type State = 'start' | 'keyOrEnd' | 'key' | 'keyText' | 'colon' | 'value' | 'image' | 'imageEscape' |
  'imageUnicode' | 'other' | 'afterValue' | 'done'

const indexOr = (chunk: Uint8Array, byte: number, from: number) => {
  const at = chunk.indexOf(byte, from)
  return at === -1 ? chunk.length : at
}

const malformed = (why: string) => new AppError('BAD_REQUEST', `The JSON body is malformed: ${why}.`)

/**
 * Finds the photo in a JSON object body as it streams in and decodes its base64 on the fly, so
 * a 25 MB photo is never held as one 33 MB string nor parsed in one go. Other top-level fields
 * are checked as JSON (each small, parsed alone) and ignored.
 */
export class JsonImageScanner {
  readonly #maxImageBytes: number
  #state: State = 'start'
  #key: number[] = []
  #keyEscape = false
  #image: ImageValue | undefined
  #found: ImageValue | undefined
  #unicode = ''
  // The current non-image value: its bytes, string/escape state and bracket depth.
  #other: number[] = []
  #otherBytes = 0
  #inString = false
  #escape = false
  #depth = 0

  constructor (maxImageBytes: number) {
    this.#maxImageBytes = maxImageBytes
  }

  push (bytes: Uint8Array): void {
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    // The photo's characters from this chunk, unescaped, handed over once per chunk.
    const text = Buffer.allocUnsafe(chunk.length)
    let n = 0
    // Where the next quote and backslash are (chunk.length: none left), found once each.
    let quote = -1
    let slash = -1
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      switch (this.#state) {
        case 'image': {
          // Runs of digits are copied natively; escapes within the chunk are taken in stride.
          let j = i
          while (j < chunk.length) {
            if (quote < j) quote = indexOr(chunk, QUOTE, j)
            if (slash < j) slash = indexOr(chunk, BACKSLASH, j)
            const stop = Math.min(quote, slash)
            n += chunk.copy(text, n, j, stop)
            j = stop
            if (j === chunk.length) break
            if (j === quote) {
              this.#image!.push(text.subarray(0, n))
              n = 0
              this.#endImage()
              break
            }
            const next = chunk[j + 1]
            if (next === undefined || next === 0x75) {
              this.#state = 'imageEscape'
              break
            }
            text[n++] = ESCAPED[next]!
            j += 2
          }
          i = j
          break
        }
        case 'imageEscape':
          if (b === 0x75) {
            this.#unicode = ''
            this.#state = 'imageUnicode'
          } else {
            text[n++] = ESCAPED[b]!
            this.#state = 'image'
          }
          break
        case 'imageUnicode':
          this.#unicode += String.fromCharCode(b)
          if (this.#unicode.length === 4) {
            const code = /^[0-9a-fA-F]{4}$/.test(this.#unicode) ? parseInt(this.#unicode, 16) : NaN
            if (!(code < 0x80)) throw new AppError('BAD_REQUEST', `"${this.#image!.field}" is not valid base64: it holds "\\u${this.#unicode}".`)
            text[n++] = code
            this.#state = 'image'
          }
          break
        default:
          this.#structural(b)
      }
    }
    if (n > 0) this.#image!.push(text.subarray(0, n))
  }

  /** The photo's bytes and the field they came from, once the whole body has been pushed. */
  end (): { field: string, bytes: Buffer } {
    if (this.#state !== 'done') throw malformed(this.#state === 'start' ? 'the body is empty' : 'it ends early')
    if (this.#found === undefined) {
      throw new AppError('NO_IMAGE', 'No image was sent: put the photo as base64 in "image" (or "image_data").')
    }
    return { field: this.#found.field, bytes: this.#found.end() }
  }

  #structural (b: number): void {
    switch (this.#state) {
      case 'start':
        if (isSpace(b)) return
        if (b !== 0x7b) throw malformed('send a JSON object, {"image": "<base64>"}')
        this.#state = 'keyOrEnd'
        return
      case 'keyOrEnd':
      case 'key':
        if (isSpace(b)) return
        if (b === 0x7d && this.#state === 'keyOrEnd') { this.#state = 'done'; return }
        if (b !== QUOTE) throw malformed('expected a field name')
        this.#key = []
        this.#keyEscape = false
        this.#state = 'keyText'
        return
      case 'keyText':
        if (b === QUOTE && !this.#keyEscape) { this.#state = 'colon'; return }
        this.#keyEscape = !this.#keyEscape && b === BACKSLASH
        this.#key.push(b)
        if (this.#key.length > MAX_KEY_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', 'A JSON field name is too long.')
        return
      case 'colon':
        if (isSpace(b)) return
        if (b !== 0x3a) throw malformed('expected ":" after a field name')
        this.#state = 'value'
        return
      case 'value':
        if (isSpace(b)) return
        this.#startValue(b)
        return
      case 'other':
        this.#otherByte(b)
        return
      case 'afterValue':
        this.#afterValue(b)
        return
      default: // done
        if (!isSpace(b)) throw malformed('there is more after the object')
    }
  }

  #startValue (b: number): void {
    const key = this.#keyName()
    if (IMAGE_FIELDS.includes(key)) {
      if (this.#found !== undefined) {
        throw new AppError('BAD_REQUEST', `Send the photo once: "${this.#found.field}" and "${key}" are both present.`)
      }
      if (b !== QUOTE) throw new AppError('BAD_REQUEST', `"${key}" must be a base64 string (or a data: URL).`)
      this.#image = new ImageValue(key, this.#maxImageBytes)
      this.#found = this.#image
      this.#state = 'image'
      return
    }
    this.#other = []
    this.#inString = false
    this.#escape = false
    this.#depth = 0
    this.#state = 'other'
    this.#otherByte(b)
  }

  #keyName (): string {
    try {
      return JSON.parse(`"${Buffer.from(this.#key).toString('utf8')}"`) as string
    } catch {
      throw malformed('a field name is not a valid JSON string')
    }
  }

  #endImage (): void {
    this.#image = undefined
    this.#state = 'afterValue'
  }

  #otherByte (b: number): void {
    if (!this.#inString && this.#depth === 0 && (b === 0x2c || b === 0x7d)) {
      try {
        JSON.parse(Buffer.from(this.#other).toString('utf8'))
      } catch {
        throw malformed(`the value of "${this.#keyName()}" is not valid JSON`)
      }
      this.#afterValue(b)
      return
    }
    if (++this.#otherBytes > MAX_OTHER_BYTES) {
      throw new AppError('PAYLOAD_TOO_LARGE', 'The JSON fields besides the image are too large; send the image and small fields only.')
    }
    this.#other.push(b)
    if (this.#inString) {
      if (this.#escape) this.#escape = false
      else if (b === BACKSLASH) this.#escape = true
      else if (b === QUOTE) this.#inString = false
    } else if (b === QUOTE) {
      this.#inString = true
    } else if (b === 0x7b || b === 0x5b) {
      this.#depth++
    } else if (b === 0x7d || b === 0x5d) {
      this.#depth--
    }
  }

  #afterValue (b: number): void {
    if (isSpace(b)) return
    if (b === 0x2c) this.#state = 'key'
    else if (b === 0x7d) this.#state = 'done'
    else throw malformed('expected "," or "}" after a value')
  }
}
