import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, posix } from 'node:path'
import { MANIFEST_FILE, hashFile } from './bundle.js'
import { parseManifest, type ModelSpec } from './manifest.js'
import { describeS3Error, headObject } from './s3.js'

// Publishing layout (README "S3 model store"): every version is its own folder,
//   <prefix>/<version>/<model file>, <prefix>/<version>/manifest.json
// and a server's S3_MODEL_KEY names one of those model files.

/** Bad input (a manifest that does not parse, an unsafe version): exit code 2 in the CLI. */
export class PublishInputError extends Error {
  override name = 'PublishInputError'
}

/** The version is already in the bucket and --force was not given: exit code 3 in the CLI. */
export class VersionExistsError extends Error {
  override name = 'VersionExistsError'
}

export interface PushOptions {
  client: S3Client
  bucket: string
  prefix: string
  modelPath: string
  /** manifest.json contents without sha256 (it is computed); `version` may come from here. */
  manifest: Record<string, unknown>
  version?: string | undefined
  /**
   * Files published beside the model, unchanged and pinned in the manifest: a TF.js model's
   * weight shards, a Keras model's facial_results.json. The server converts Keras models itself.
   */
  sideFiles?: readonly string[]
  force?: boolean
  dryRun?: boolean
  /** Multipart part size: fauxqs takes at most ~11 MiB per request, S3 at least 5 MiB. */
  partSize?: number
  onProgress?: (sentBytes: number, totalBytes: number) => void
}

export interface PushResult {
  modelKey: string
  manifestKey: string
  version: string
  sha256: string
  bytes: number
  spec: ModelSpec
  /** Whether a version was replaced (--force) or would have been refused. */
  existed: boolean
  uploaded: boolean
}

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/
// What the server accepts as a bundle file name (src/models/manifest.ts).
const SIDE_FILE = /^(?!\.\.?$)[A-Za-z0-9._-]{1,200}$/
const MiB = 1024 * 1024

export const versionKey = (prefix: string, version: string, file: string) =>
  posix.join(prefix.replace(/^\/+|\/+$/g, ''), version, file)

async function exists (client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await headObject(client, bucket, key)
    return true
  } catch (err) {
    if (describeS3Error(err).status === 404) return false
    throw err
  }
}

/**
 * Writes one model version: the model (multipart through lib-storage), then its manifest with
 * the sha256 filled in, last, so a manifest in the bucket always describes a complete model.
 */
export async function pushModel (o: PushOptions): Promise<PushResult> {
  const version = o.version ?? o.manifest.version
  if (typeof version !== 'string' || !VERSION.test(version)) {
    throw new PublishInputError(`version ${JSON.stringify(version ?? null)} must be 1-128 of A-Z a-z 0-9 . _ + - (use --version or the manifest's "version")`)
  }
  const file = typeof o.manifest.file === 'string' ? o.manifest.file : basename(o.modelPath)
  const side = (o.sideFiles ?? []).map((path) => ({ path, name: basename(path) }))
  const clash = side.find((f) => f.name === file || f.name === MANIFEST_FILE || !SIDE_FILE.test(f.name))
  if (clash !== undefined) throw new PublishInputError(`${clash.path} cannot be published beside ${file} (its name is taken or not a plain file name)`)
  const modelBytes = (await stat(o.modelPath)).size
  let bytes = modelBytes
  const sha256 = await hashFile(o.modelPath)
  const pins: Record<string, string> = { [file]: sha256 }
  for (const f of side) {
    pins[f.name] = await hashFile(f.path)
    bytes += (await stat(f.path)).size
  }
  const manifestText = `${JSON.stringify({ ...o.manifest, version, file, sha256: pins }, null, 2)}\n`
  let spec: ModelSpec
  try {
    spec = parseManifest(manifestText)
  } catch (err) {
    throw new PublishInputError((err as Error).message)
  }
  const modelKey = versionKey(o.prefix, version, file)
  const manifestKey = versionKey(o.prefix, version, MANIFEST_FILE)
  const found = await Promise.all([exists(o.client, o.bucket, modelKey), exists(o.client, o.bucket, manifestKey)])
  const existed = found.includes(true)
  const result: PushResult = { modelKey, manifestKey, version, sha256, bytes, spec, existed, uploaded: false }
  if (existed && o.force !== true && o.dryRun !== true) {
    throw new VersionExistsError(`s3://${o.bucket}/${posix.dirname(modelKey)}/ already holds version ${version}; pass --force to overwrite it`)
  }
  if (o.dryRun === true) return result
  const upload = new Upload({
    client: o.client,
    params: { Bucket: o.bucket, Key: modelKey, Body: createReadStream(o.modelPath), ContentType: 'application/octet-stream', Metadata: { sha256, 'model-version': version } },
    partSize: o.partSize ?? 8 * MiB,
    queueSize: 4,
    leavePartsOnError: false
  })
  upload.on('httpUploadProgress', (p) => o.onProgress?.(Number(p.loaded), modelBytes))
  await upload.done()
  for (const f of side) {
    await o.client.send(new PutObjectCommand({ Bucket: o.bucket, Key: versionKey(o.prefix, version, f.name), Body: await readFile(f.path), Metadata: { sha256: pins[f.name] as string } }))
  }
  await o.client.send(new PutObjectCommand({ Bucket: o.bucket, Key: manifestKey, Body: manifestText, ContentType: 'application/json' }))
  return { ...result, uploaded: true }
}

export interface VersionRow {
  /** The version folder, e.g. models/skin/2026-11-01.1 */
  folder: string
  version: string
  modelKey: string
  bytes: number | undefined
  date: Date | undefined
  labels: number | undefined
  /** Why the manifest could not be read, when it could not. */
  problem?: string
}

/** Every bundle (a folder with manifest.json) under a prefix, newest first. */
export async function listVersions (client: S3Client, bucket: string, prefix: string): Promise<VersionRow[]> {
  const clean = prefix.replace(/^\/+|\/+$/g, '')
  const objects = new Map<string, { size: number | undefined, date: Date | undefined }>()
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: clean === '' ? undefined : `${clean}/`, ContinuationToken: token }))
    for (const o of page.Contents ?? []) objects.set(String(o.Key), { size: o.Size, date: o.LastModified })
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  const manifests = [...objects.keys()].filter((k) => posix.basename(k) === MANIFEST_FILE)
  const rows = await Promise.all(manifests.map(async (key): Promise<VersionRow> => {
    const folder = posix.dirname(key)
    const row: VersionRow = { folder, version: '?', modelKey: '', bytes: undefined, date: objects.get(key)?.date, labels: undefined }
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      const spec = parseManifest(await out.Body!.transformToString())
      const model = objects.get(posix.join(folder, spec.file))
      return { ...row, version: spec.version, modelKey: posix.join(folder, spec.file), bytes: model?.size, date: model?.date ?? row.date, labels: spec.labels.length }
    } catch (err) {
      return { ...row, problem: (err as Error).message }
    }
  }))
  return rows.sort((a, b) => Number(b.date) - Number(a.date))
}
