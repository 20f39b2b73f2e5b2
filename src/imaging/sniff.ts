import { AppError } from '../errors.js'

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif'

interface Signature {
  offset: number
  bytes: string // latin1, compared byte for byte
}

interface Rule {
  kind: ImageFormat | 'refuse'
  name: string
  signatures: Signature[]
  advice?: string
}

const at = (offset: number, bytes: string): Signature => ({ offset, bytes })

// Decided from the bytes alone; the client's MIME type and filename are never trusted.
// Refused formats are named so the message tells the user what we saw. SVG, PDF, TIFF and BMP are
// never handed to a decoder: SVG and PDF can reference external resources and run heavy renderers.
const RULES: Rule[] = [
  { kind: 'jpeg', name: 'JPEG', signatures: [at(0, '\xFF\xD8\xFF')] },
  { kind: 'png', name: 'PNG', signatures: [at(0, '\x89PNG\r\n\x1A\n')] },
  { kind: 'gif', name: 'GIF', signatures: [at(0, 'GIF87a'), at(0, 'GIF89a')] },
  { kind: 'refuse', name: 'PDF', signatures: [at(0, '%PDF')] },
  { kind: 'refuse', name: 'TIFF', signatures: [at(0, 'II*\x00'), at(0, 'MM\x00*')] },
  { kind: 'refuse', name: 'BMP', signatures: [at(0, 'BM')] },
  { kind: 'refuse', name: 'JPEG XL', signatures: [at(0, '\xFF\x0A'), at(4, 'JXL ')] },
  { kind: 'refuse', name: 'ICO', signatures: [at(0, '\x00\x00\x01\x00')] }
]

// ISO-BMFF brands (the `ftyp` box): AVIF is allowed, HEIC/HEIF (iPhone default) is not.
const AVIF_BRANDS = new Set(['avif', 'avis'])
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs', 'mif1', 'msf1'])
const HEIC_ADVICE = 'HEIC/HEIF photos are not supported: send a JPEG (on iPhone, Settings › Camera › Formats › Most Compatible).'

function matches (bytes: Uint8Array, sig: Signature): boolean {
  if (bytes.length < sig.offset + sig.bytes.length) return false
  for (let i = 0; i < sig.bytes.length; i++) {
    if (bytes[sig.offset + i] !== sig.bytes.charCodeAt(i)) return false
  }
  return true
}

const ascii = (bytes: Uint8Array, start: number, end: number) =>
  Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.max(0, Math.min(end, bytes.length) - start)).toString('latin1')

function sniffIsoBmff (bytes: Uint8Array): ImageFormat | 'heif' | undefined {
  if (!matches(bytes, at(4, 'ftyp'))) return undefined
  const boxSize = Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32BE(0)
  const brands = [ascii(bytes, 8, 12)]
  for (let i = 16; i + 4 <= Math.min(boxSize, bytes.length, 256); i += 4) brands.push(ascii(bytes, i, i + 4))
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif'
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heif'
  return undefined
}

function looksLikeMarkup (bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 512)).toString('utf8')
    .replace(/^\uFEFF/, '').trimStart().toLowerCase()
  return head.startsWith('<?xml') || head.startsWith('<svg') || head.startsWith('<!doctype') || head.startsWith('<html')
}

/** The image format, or an AppError (415) naming what was sent instead. */
export function sniffFormat (bytes: Uint8Array): ImageFormat {
  if (matches(bytes, at(0, 'RIFF')) && matches(bytes, at(8, 'WEBP'))) return 'webp'
  const bmff = sniffIsoBmff(bytes)
  if (bmff === 'heif') throw new AppError('UNSUPPORTED_MEDIA_TYPE', HEIC_ADVICE)
  if (bmff !== undefined) return bmff
  const rule = RULES.find((r) => r.signatures.some((s) => matches(bytes, s)))
  if (rule !== undefined && rule.kind !== 'refuse') return rule.kind
  const seen = rule?.name ?? (looksLikeMarkup(bytes) ? 'SVG/XML/HTML' : undefined)
  throw new AppError('UNSUPPORTED_MEDIA_TYPE', seen === undefined
    ? 'The file is not an image we can read: send a JPEG, PNG, WebP, AVIF or GIF.'
    : `${seen} files are not accepted: send a JPEG, PNG, WebP, AVIF or GIF.`)
}
