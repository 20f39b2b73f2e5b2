// Keras/TF.js models served as ONNX: converted once (off the main thread), kept in the cache beside
// their verified source, keyed by the source's sha256 and the converter's version (README "Keras models").
import { createHash } from 'node:crypto'
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ConvertSummary } from '../convert/convert.js'
import type { ModelFormat } from '../convert/detect.js'
import { ConvertError } from '../convert/errors.js'
import { createStaging, rewriteMarker, syncDir, type ConversionFailure, type ConvertedRecord, type Marker } from './cache.js'
import { convertOffThread, looksLikeOnnx, readHead } from './conversion.js'
import { ManifestError } from './manifest.js'

export interface Prepared {
  /** The file ONNX Runtime loads: the source itself, or its conversion. */
  modelFile: string
  format: ModelFormat
  converted?: ConvertedRecord
  /** Set when this call converted (a warm boot reuses the cached conversion and has none). */
  summary?: ConvertSummary
}

/** Called before a conversion starts, with what /health shows ("keras-h5"). */
export type OnConverting = (format: string) => void

// The version lives in convert.ts, which loads h5wasm: imported only when a Keras model is served.
const converterVersion = async () => (await import('../convert/convert.js')).CONVERTER_VERSION

/** The converted file's name: one per converter version, so an upgrade never overwrites in place. */
export const convertedFileName = (converter: string) =>
  `converted-${createHash('sha256').update(converter).digest('hex').slice(0, 12)}.onnx`

export const isConvertedFile = (file: string) => /^converted-[0-9a-f]{12}\.onnx$/.test(file)

const GUESS: Array<[number[], string]> = [[[0x89, 0x48, 0x44, 0x46], 'keras-h5'], [[0x50, 0x4b, 0x03, 0x04], 'keras'], [[0x7b], 'tfjs']]

/** For /health while the worker starts: what the first bytes suggest (the worker decides). */
const guessFormat = (head: Buffer) => GUESS.find(([sig]) => sig.every((b, i) => head[i] === b))?.[1] ?? 'model'

export function checkDeclaredFormat (declared: ModelFormat | undefined, actual: ModelFormat, what: string): void {
  if (declared !== undefined && declared !== actual) {
    throw new ManifestError(`manifest.json says format "${declared}" but ${what} is ${actual === 'onnx' ? 'an ONNX model' : `a ${actual} model`}`)
  }
}

/**
 * Whether a file must go to the converter, from its first bytes and the manifest's format. A
 * manifest that says onnx is trusted (ONNX Runtime checks the file) unless the bytes are plainly
 * HDF5, a zip or JSON; a file with no manifest that is not ONNX goes to the converter, whose
 * format detection names what it is (a pickle, a SavedModel…).
 */
export function needsConversion (head: Buffer, declared: ModelFormat | undefined, what: string): boolean {
  if (looksLikeOnnx(head)) {
    checkDeclaredFormat(declared, 'onnx', what)
    return false
  }
  if (declared !== 'onnx') return true
  const guess = guessFormat(head)
  if (guess !== 'model') throw new ManifestError(`manifest.json says format "onnx" but ${what} looks like a ${guess} model`)
  return false
}

export interface ConvertOptions {
  source: string
  /** sha256 of the source as verified (the cache key). */
  sourceSha256: string
  what: string
  declared?: ModelFormat | undefined
  /** A staging folder on the cache's disk; the converted file is written and fsynced here. */
  staging: string
  onConverting?: OnConverting | undefined
}

/**
 * The source itself when it is ONNX; otherwise its conversion, written to `staging` and fsynced.
 * Nothing is written when the converter refuses the file (the caller removes `staging` on any failure).
 */
export async function convertSource (o: ConvertOptions): Promise<Prepared & { path?: string }> {
  const head = await readHead(o.source)
  if (!needsConversion(head, o.declared, o.what)) return { modelFile: o.source, format: 'onnx' }
  const converter = await converterVersion()
  o.onConverting?.(o.declared ?? guessFormat(head))
  const file = convertedFileName(converter)
  const path = join(o.staging, file)
  const result = await convertOffThread({ path: o.source, workDir: o.staging, what: o.what, out: path })
  checkDeclaredFormat(o.declared, result.format, o.what)
  /* c8 ignore next -- detectFormat's ONNX rule is looksLikeOnnx's, so the worker never says onnx here */
  if (result.format === 'onnx') return { modelFile: o.source, format: 'onnx' }
  const converted: ConvertedRecord = { file, sha256: result.sha256, from: o.sourceSha256, format: result.format, converter }
  return { modelFile: path, path, format: result.format, converted, summary: result.summary }
}

/** The marker's conversion, if it is of these bytes by this converter. */
async function reusable (marker: Marker, sourceSha256: string): Promise<{ converted?: ConvertedRecord, failed?: ConversionFailure, converter: string }> {
  const converter = await converterVersion()
  const matches = (r: { from: string, converter: string } | undefined) => r !== undefined && r.from === sourceSha256 && r.converter === converter
  return {
    converter,
    ...(matches(marker.converted) ? { converted: marker.converted } : {}),
    ...(matches(marker.conversionFailed) ? { failed: marker.conversionFailed } : {})
  }
}

export interface CachedEntryOptions {
  dir: string
  marker: Marker
  /** Where staging folders go: the key folder, on the same disk as `dir`. */
  stagingParent: string
  what: string
  declared?: ModelFormat | undefined
  onConverting?: OnConverting | undefined
}

/**
 * A verified S3 cache entry made servable. A conversion the marker records (re-hashed with the
 * rest of the folder) is reused; otherwise the source is converted, the file renamed into the
 * folder, and the marker rewritten to cover it. A refusal is recorded too, so the same bytes are
 * not converted again by the same converter; the ConvertError is rethrown.
 */
export async function prepareCachedEntry (o: CachedEntryOptions): Promise<Prepared> {
  const source = join(o.dir, o.marker.file)
  const sourceSha256 = o.marker.sha256[o.marker.file] as string
  if (o.marker.converted === undefined && o.marker.conversionFailed === undefined && !needsConversion(await readHead(source), o.declared, o.what)) {
    return { modelFile: source, format: 'onnx' }
  }
  const known = await reusable(o.marker, sourceSha256)
  if (known.converted !== undefined) {
    return { modelFile: join(o.dir, known.converted.file), format: known.converted.format as ModelFormat, converted: known.converted }
  }
  if (known.failed !== undefined) throw new ConvertError(known.failed.message)
  const staging = await createStaging(o.stagingParent)
  try {
    const { converted: _old, conversionFailed: _failed, ...rest } = o.marker
    const sha256 = Object.fromEntries(Object.entries(o.marker.sha256).filter(([f]) => !isConvertedFile(f)))
    let prepared: Prepared & { path?: string }
    try {
      prepared = await convertSource({ source, sourceSha256, what: o.what, declared: o.declared, staging, onConverting: o.onConverting })
    } catch (err) {
      /* c8 ignore next -- a disk error while converting is not the model's fault: not recorded */
      if (!(err instanceof ConvertError) && !(err instanceof ManifestError)) throw err
      await rewriteMarker(o.dir, { ...rest, sha256, conversionFailed: { from: sourceSha256, converter: known.converter, message: err.message } }, staging)
      throw err
    }
    /* c8 ignore next -- a recorded conversion or refusal of a file a manifest now calls onnx */
    if (prepared.converted === undefined || prepared.path === undefined) return prepared
    const dest = join(o.dir, prepared.converted.file)
    await rename(prepared.path, dest)
    await syncDir(o.dir)
    await rewriteMarker(o.dir, { ...rest, sha256: { ...sha256, [prepared.converted.file]: prepared.converted.sha256 }, converted: prepared.converted }, staging)
    // An older converter's file goes only once the marker no longer names it.
    const old = o.marker.converted?.file
    if (old !== undefined && old !== prepared.converted.file && isConvertedFile(old)) await rm(join(o.dir, old), { force: true })
    return { ...prepared, modelFile: dest }
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}
