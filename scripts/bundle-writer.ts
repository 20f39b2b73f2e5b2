// Writes a model bundle (model file + manifest.json with its sha256) into a
// directory. Used by build-demo-model.ts and by tests that need tiny bundles.
import { createHash, randomUUID } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export const MANIFEST_FILE = 'manifest.json'
export const DEFAULT_MODEL_FILE = 'model.onnx'

/**
 * Everything the manifest should contain apart from what writeBundle derives.
 * `file` defaults to 'model.onnx' and `format` to 'onnx'. `sha256` is normally
 * computed; pass it only to write a deliberately wrong hash (e.g. in a test).
 */
export interface ManifestFields {
  name: string
  version: string
  file?: string
  format?: string
  sha256?: Record<string, string>
  [key: string]: unknown
}

export interface WrittenBundle {
  dir: string
  modelPath: string
  manifestPath: string
  sha256: string
  manifest: Record<string, unknown>
}

export function sha256Hex (bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Write to a temp file in the same directory, fsync, then rename over the
 * target, so readers never see a half-written file.
 */
export async function writeFileAtomic (path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomUUID()}.tmp`)
  try {
    const handle = await open(tmp, 'w')
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

// Keys listed here come first, in this order, so manifests read naturally;
// anything else follows in the caller's order
const HEAD_KEYS = ['name', 'version', 'format', 'file', 'demo', 'description', 'builder', 'sha256']

function orderManifest (manifest: Record<string, unknown>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {}
  for (const key of HEAD_KEYS) {
    if (key in manifest) ordered[key] = manifest[key]
  }
  for (const [key, value] of Object.entries(manifest)) {
    if (!(key in ordered)) ordered[key] = value
  }
  return ordered
}

/**
 * Create `dir` if needed and write `<dir>/<file>` then `<dir>/manifest.json`
 * (manifest last, so a complete manifest always describes a complete model).
 */
export async function writeBundle (dir: string, modelBytes: Uint8Array, manifestFields: ManifestFields): Promise<WrittenBundle> {
  const file = manifestFields.file ?? DEFAULT_MODEL_FILE
  const sha256 = sha256Hex(modelBytes)
  const manifest = orderManifest({
    format: 'onnx',
    ...manifestFields,
    file,
    sha256: manifestFields.sha256 ?? { [file]: sha256 }
  })

  const modelPath = join(dir, file)
  const manifestPath = join(dir, MANIFEST_FILE)
  await mkdir(dirname(modelPath), { recursive: true })
  await writeFileAtomic(modelPath, modelBytes)
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)
  return { dir, modelPath, manifestPath, sha256, manifest }
}
