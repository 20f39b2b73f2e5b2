import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, readdir, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { ConvertSummary } from '../convert/convert.js'
import type { ModelFormat } from '../convert/detect.js'
import { ManifestError, parseManifest, type ModelSpec, type SideLabels } from './manifest.js'

export const MANIFEST_FILE = 'manifest.json'

/** A model bundle on disk: the folder, its model file, and the manifest if it has one. */
export interface Bundle {
  dir: string
  /** The ONNX file to load: the model itself, or the conversion of a Keras/TF.js model. */
  modelFile: string
  /** Undefined when the folder has no manifest.json: the spec then comes from the model file. */
  spec: ModelSpec | undefined
  /** The format of the model as published (onnx when absent). */
  format?: ModelFormat
  /** The published model file, when modelFile is its conversion. */
  sourceFile?: string
  /** Without a manifest: labels from a JSON beside the model (src/models/labels.ts). */
  labels?: SideLabels
  /** Set when this boot converted the model (a warm boot reuses the cached conversion). */
  conversion?: ConvertSummary
  /** The published model file's sha256 when the store hashed it: names a manifest-less model's version. */
  sourceSha256?: string
}

// A folder without a manifest is served when it holds exactly one of these.
const MODEL_FILE = /\.(onnx|h5|keras)$|^model\.json$/i

/** A file's digest in 1 MiB reads: twice as fast as the default 64 KiB (128 MB: 80 vs 150–210 ms). */
export async function hashFile (path: string, algorithm = 'sha256'): Promise<string> {
  const hash = createHash(algorithm)
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hash)
  return hash.digest('hex')
}

/** Checks every file the manifest pins; the error names the first file that does not match. */
export async function verifyBundle (dir: string, spec: ModelSpec): Promise<void> {
  for (const [file, expected] of Object.entries(spec.sha256)) {
    const actual = await hashFile(join(dir, file))
    if (actual !== expected.toLowerCase()) {
      throw new ManifestError(`${join(dir, file)}: sha256 ${actual} does not match the manifest's ${expected}`)
    }
  }
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT'

async function readManifest (dir: string): Promise<ModelSpec | undefined> {
  try {
    return parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
  } catch (err) {
    if (isMissing(err)) return undefined
    throw err
  }
}

/**
 * MODEL_PATH is a bundle folder, or a model file whose folder is the bundle (DESIGN.md).
 * The manifest's pinned hashes are checked before the bundle is used.
 */
export async function openBundle (path: string): Promise<Bundle> {
  const info = await stat(path).catch((err: unknown) => {
    throw new ManifestError(isMissing(err) ? `model path ${path} does not exist` : `model path ${path}: ${(err as Error).message}`)
  })
  const dir = info.isDirectory() ? path : dirname(path)
  const spec = await readManifest(dir)
  let modelFile: string
  if (spec !== undefined) {
    if (!info.isDirectory() && basename(path) !== spec.file) {
      throw new ManifestError(`${path} is not the model named in ${join(dir, MANIFEST_FILE)} ("${spec.file}")`)
    }
    modelFile = join(dir, spec.file)
  } else if (info.isDirectory()) {
    const models = (await readdir(dir)).filter((f) => MODEL_FILE.test(f)).sort()
    if (models.length !== 1) {
      throw new ManifestError(`${dir} has no ${MANIFEST_FILE} and ${models.length === 0 ? 'no' : models.length} model files (.onnx, .h5, .keras, model.json)${models.length > 1 ? ` (${models.join(', ')})` : ''}; add a manifest or point MODEL_PATH at the model file`)
    }
    modelFile = join(dir, models[0]!)
  } else {
    modelFile = path
  }
  await stat(modelFile).catch(() => { throw new ManifestError(`model file ${modelFile} does not exist`) })
  if (spec !== undefined) await verifyBundle(dir, spec)
  return { dir, modelFile, spec }
}
