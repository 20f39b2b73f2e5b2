import sharp from 'sharp'
import { AppError } from '../errors.js'
import type { ImageFormat } from './sniff.js'

// Every upload is new: libvips' operation cache would only hold memory (up to 50 MB) for nothing.
sharp.cache(false)

/** libvips threads per decode (the thread budget decides: src/thread-budget.ts). */
export function setDecodeThreads (threads: number): void {
  sharp.concurrency(threads)
}

export interface DecodeLimits {
  maxPixels: number
  /** libvips stops work on one image after this long (decompression-bomb and slow-path guard). */
  timeoutS: number
}

export interface DecodedImage {
  /** Interleaved 8-bit sRGB at the target size. */
  rgb: Buffer
  /** Size of the upload after EXIF rotation. */
  width: number
  height: number
}

// A photo narrower than this carries no skin texture worth analysing; beyond 1:20 it is a strip.
export const MIN_SIDE_PX = 32
export const MAX_ASPECT = 20

// 'truncated' refuses truncated and corrupt data but tolerates the benign warnings many phone
// cameras' JPEGs raise; PIL, which the replaced service used, also refuses truncated files.
const FAIL_ON = 'error'

// libvips names its limit this way; everything else that fails a decode is a damaged file.
const PIXEL_LIMIT = /exceeds pixel limit/i

export function checkDimensions (width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new AppError('IMAGE_TOO_LARGE',
      `The image is ${width}×${height} (${(width * height / 1e6).toFixed(1)} Mpx); the limit is ${(maxPixels / 1e6).toFixed(1)} Mpx.`)
  }
  if (width < 1 || height < 1) throw new AppError('UNDECODABLE_IMAGE', 'The image has no pixels.')
  if (Math.min(width, height) < MIN_SIDE_PX) {
    throw new AppError('UNSUITABLE_IMAGE', `The image is ${width}×${height}; each side must be at least ${MIN_SIDE_PX} px.`)
  }
  if (Math.max(width, height) / Math.min(width, height) > MAX_ASPECT) {
    throw new AppError('UNSUITABLE_IMAGE', `The image is ${width}×${height}; its sides must be within 1:${MAX_ASPECT} of each other.`)
  }
}

/** What a failed decode means for the client: sharp's errors are plain Errors with messages. */
export function decodeError (err: unknown): AppError {
  if (err instanceof AppError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (PIXEL_LIMIT.test(message)) return new AppError('IMAGE_TOO_LARGE', undefined, { cause: err })
  if (/timeout/i.test(message)) return new AppError('UNSUITABLE_IMAGE', 'The image took too long to decode.', { cause: err })
  return new AppError('UNDECODABLE_IMAGE', undefined, { cause: err })
}

/**
 * The only sharp call: header check, EXIF auto-orient, first frame only, alpha flattened on
 * white, any colour space or bit depth → 8-bit sRGB, resized to the model input.
 * Resizing uses libvips' linear (triangle) kernel, which like PIL's BILINEAR widens its support
 * when downscaling; test/imaging/resize.test.ts measures the distance to a PIL reference.
 */
export async function decodeImage (
  bytes: Buffer, format: ImageFormat, target: { width: number, height: number }, limits: DecodeLimits
): Promise<DecodedImage> {
  try {
    const image = sharp(bytes, { failOn: FAIL_ON, limitInputPixels: limits.maxPixels, pages: 1 })
      .timeout({ seconds: limits.timeoutS })
    const meta = await image.metadata()
    if (meta.format !== format && !(format === 'avif' && meta.format === 'heif')) {
      throw new AppError('UNDECODABLE_IMAGE', `The file starts like ${format.toUpperCase()} but does not decode as one.`)
    }
    const { width, height } = meta.autoOrient
    checkDimensions(width, height, limits.maxPixels)
    const rgb = await image
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .resize(target.width, target.height, { fit: 'fill', kernel: 'linear' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer()
    return { rgb, width, height }
  } catch (err) {
    throw decodeError(err)
  }
}
