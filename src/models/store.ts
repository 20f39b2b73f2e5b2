import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ConvertSummary } from '../convert/convert.js'
import type { ModelFormat } from '../convert/detect.js'
import { hashFile, openBundle, type Bundle } from './bundle.js'
import { checkEntry, commitStaging, createStaging, listEntries, readMarker, touchEntry, type Marker } from './cache.js'
import { readHead } from './conversion.js'
import { checkDeclaredFormat, convertSource, needsConversion, type OnConverting } from './converted.js'
import { readSideLabels } from './labels.js'

/** Where the served bundle came from (DESIGN.md's `/health` `source`). */
export type ModelSource = 'local' | 's3' | 'cache'

export interface ResolvedBundle extends Bundle {
  source: ModelSource
  /** Why a cached copy is served instead of the S3 one, when that happened. */
  sourceError?: string
}

/** A store failure with a one-line reason that names where the model was looked for, never a stack. */
export class StoreError extends Error {
  override name = 'StoreError'
}

export interface DownloadProgress {
  downloadedBytes: number
  totalBytes: number
}

/**
 * Finds a verified bundle on local disk, fetching it first if needed, and converts a Keras or
 * TF.js model to ONNX (cached). Each implementation returns only bundles whose pinned hashes match.
 */
export interface ModelStore {
  resolve: (onProgress?: (progress: DownloadProgress) => void, onConverting?: OnConverting, options?: ResolveOptions) => Promise<ResolvedBundle>
}

export interface ResolveOptions {
  /**
   * A replacement for a serving model: a failure is thrown instead of answered with an older
   * cached copy (the serving one is better), and `keep` (the serving bundle's folder) is never
   * pruned.
   */
  replacing?: { keep: string }
}

// Conversions of local model files: MODEL_DIR/converted/<source sha256, 32 hex>/ (README "Keras models").
export const CONVERTED_SUBDIR = 'converted'

/** Adds the labels beside a model that has no manifest. */
export async function withSideLabels<B extends Bundle> (bundle: B, names?: readonly string[]): Promise<B> {
  if (bundle.spec !== undefined) return bundle
  const labels = await readSideLabels(bundle.dir, names)
  return labels === undefined ? bundle : { ...bundle, labels }
}

/**
 * A local Keras/TF.js file converted into MODEL_DIR, never beside the user's file. The folder is
 * named by the source's sha256 and its marker records the converter version; a folder that does
 * not re-hash, or was made by another converter, is converted again.
 */
async function convertLocal (bundle: Bundle, modelDir: string, onConverting?: OnConverting): Promise<Bundle> {
  const source = bundle.modelFile
  const root = join(modelDir, CONVERTED_SUBDIR)
  const sourceSha256 = await hashFile(source)
  const dir = join(root, sourceSha256.slice(0, 32))
  const marker = await readMarker(dir)
  const declared = bundle.spec?.format
  const { CONVERTER_VERSION } = await import('../convert/convert.js')
  const c = marker?.converted
  if (marker !== undefined && c !== undefined && c.from === sourceSha256 && c.converter === CONVERTER_VERSION && await checkEntry(dir, marker) === undefined) {
    checkDeclaredFormat(declared, c.format as ModelFormat, source)
    await touchEntry(dir)
    return { ...bundle, modelFile: join(dir, c.file), format: c.format as ModelFormat, sourceFile: source, sourceSha256 }
  }
  // Abandoned staging folders and unmarked folders go (listEntries cleans them on the way).
  await listEntries(root, root)
  const staging = await createStaging(root)
  try {
    const prepared = await convertSource({ source, sourceSha256, what: source, declared, staging, onConverting })
    /* c8 ignore next -- a file that is ONNX by its bytes never gets here (localStore checks first) */
    if (prepared.converted === undefined) return { ...bundle, format: 'onnx' }
    const record = prepared.converted
    const entry: Marker = {
      bucket: '', key: source, version: sourceSha256, file: record.file, sha256: { [record.file]: record.sha256 },
      verifiedBy: 'sha256', downloadedAt: new Date().toISOString(), converted: record
    }
    await commitStaging(staging, dir, entry)
    return { ...bundle, modelFile: join(dir, record.file), format: prepared.format, sourceFile: source, sourceSha256, conversion: prepared.summary as ConvertSummary }
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/** MODEL_PATH served as it is (no S3 configured); a Keras/TF.js file is converted into MODEL_DIR. */
export function localStore (modelPath: string, modelDir: string): ModelStore {
  return {
    async resolve (_onProgress, onConverting) {
      const bundle = await withSideLabels(await openBundle(modelPath))
      if (!needsConversion(await readHead(bundle.modelFile), bundle.spec?.format, bundle.modelFile)) {
        // Without a manifest the file's hash names the version (a manifest's files are hashed by openBundle).
        const sourceSha256 = bundle.spec === undefined ? await hashFile(bundle.modelFile) : undefined
        return { ...bundle, format: 'onnx', source: 'local', ...(sourceSha256 === undefined ? {} : { sourceSha256 }) }
      }
      return { ...(await convertLocal(bundle, modelDir, onConverting)), source: 'local' }
    }
  }
}
