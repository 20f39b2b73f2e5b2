import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { hashFile, MANIFEST_FILE } from './bundle.js'
import { parseManifest, type ModelSpec } from './manifest.js'

// Layout under MODEL_DIR (README "S3 model store"):
//   s3/<bucket>/<key>/<version>/      one verified bundle: model, manifest.json, .verified.json,
//                                     and converted-<converter>.onnx for a Keras/TF.js model
//   s3/<bucket>/<key>/.tmp-<pid>-…/   a download in progress; renamed to <version> once verified
// Every segment goes through safeSegment, so no bucket, key or ETag can name a path outside.
export const CACHE_SUBDIR = 's3'
export const MARKER_FILE = '.verified.json'
const STAGING_PREFIX = '.tmp-'

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/
const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16)

/**
 * One path segment for any string. Plain names stay readable; anything else ('/', '..', a
 * leading dot, spaces, unicode, absolute paths, over 80 characters) keeps its safe characters
 * and gains a hash of the original, so different inputs never share a folder.
 */
export function safeSegment (raw: string): string {
  if (SAFE.test(raw)) return raw
  const readable = raw.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 60)
  return `${readable === '' ? 'x' : readable}~${digest(raw)}`
}

export function keyDir (modelDir: string, bucket: string, key: string): string {
  return join(modelDir, CACHE_SUBDIR, safeSegment(bucket), safeSegment(key))
}

/** What an S3 object version is known by: the VersionId on versioned buckets, else the ETag. */
export interface VersionRef {
  etag: string
  versionId: string | undefined
}

const tagOf = (v: VersionRef) => (v.versionId === undefined ? v.etag : `v${v.versionId}`)

const PLAIN_TAG = /^[A-Za-z0-9-]+$/

/**
 * The cache folder name of one bundle version: the model's version and the manifest's, and
 * without a manifest those of the label files found beside the model (a new facial_results.json
 * is a new version).
 */
export function versionName (model: VersionRef, manifest: VersionRef | undefined, sideFiles: readonly VersionRef[] = []): string {
  const tags = [tagOf(model), manifest === undefined ? 'nomanifest' : tagOf(manifest), ...sideFiles.map(tagOf)]
  // ETags are hex (and "-N"), so "_" keeps two of them apart. VersionIds may hold "_", "/" or
  // "+": those pairs are named by a hash of both, JSON-encoded so no two pairs share a name.
  return safeSegment(tags.every((t) => PLAIN_TAG.test(t)) ? tags.join('_') : JSON.stringify(tags))
}

/** Written last into a bundle folder: what was verified, against what, and when. */
export interface Marker {
  bucket: string
  key: string
  version: string
  /** The model file's name in the folder. */
  file: string
  /** sha256 of every file in the folder as downloaded, manifest.json included. */
  sha256: Record<string, string>
  /** 'sha256': pinned by the manifest; 'etag-md5': no manifest, the ETag was the MD5; 'none'. */
  verifiedBy: 'sha256' | 'etag-md5' | 'none'
  downloadedAt: string
  /** A Keras/TF.js model's ONNX conversion; its file is also in `sha256`, so it re-hashes too. */
  converted?: ConvertedRecord
  /** This converter refused these bytes: not converted again until the converter changes. */
  conversionFailed?: ConversionFailure
}

export interface ConvertedRecord {
  file: string
  sha256: string
  /** sha256 of the source model file it was converted from. */
  from: string
  format: string
  converter: string
}

export interface ConversionFailure {
  from: string
  converter: string
  message: string
}

export async function readMarker (dir: string): Promise<Marker | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, MARKER_FILE), 'utf8')) as Partial<Marker>
    if (typeof m.sha256 !== 'object' || m.sha256 === null || typeof m.version !== 'string' || typeof m.file !== 'string' || !(m.file in m.sha256)) return undefined
    return m as Marker
  } catch {
    return undefined
  }
}

/**
 * Re-hashes a cached bundle against its marker. Returns the reason it cannot be trusted, or
 * undefined when every file matches.
 */
export async function checkEntry (dir: string, marker: Marker): Promise<string | undefined> {
  for (const [file, expected] of Object.entries(marker.sha256)) {
    if (basename(file) !== file) return `${MARKER_FILE} names an unsafe file "${file}"`
    const actual = await hashFile(join(dir, file)).catch(() => 'missing')
    if (actual !== expected) return `${join(dir, file)}: sha256 ${actual} does not match the verified ${expected}`
  }
  return undefined
}

export interface Inspected {
  marker: Marker | undefined
  spec: ModelSpec | undefined
  /** Why the folder cannot be trusted; undefined when every file re-hashes to what was verified. */
  problem: string | undefined
}

/**
 * Re-hashes one cached version: every file against its marker, and the marker against the
 * hashes its manifest pins.
 */
export async function inspectEntry (dir: string): Promise<Inspected> {
  const marker = await readMarker(dir)
  if (marker === undefined) return { marker, spec: undefined, problem: `${join(dir, MARKER_FILE)} is missing or invalid` }
  let problem = await checkEntry(dir, marker)
  let spec: ModelSpec | undefined
  if (problem === undefined && MANIFEST_FILE in marker.sha256) {
    try {
      spec = parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
      const unpinned = Object.entries(spec.sha256).find(([file, sha]) => marker.sha256[file] !== sha.toLowerCase())
      if (unpinned !== undefined) problem = `${unpinned[0]} is not the file its manifest pins`
    } catch (err) {
      problem = (err as Error).message
    }
  }
  return { marker, spec, problem }
}

export async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** A fresh folder for one download, beside the versions so the final rename stays on one disk. */
export async function createStaging (parent: string): Promise<string> {
  await mkdir(parent, { recursive: true })
  const dir = join(parent, `${STAGING_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`)
  await mkdir(dir)
  return dir
}

/**
 * Makes a verified download visible in one step: the marker is written and every file and the
 * folder are fsynced before the rename, so a crash leaves either no version or a complete one.
 * Returns false when another process committed the same version first (its copy is used).
 */
export async function commitStaging (staging: string, dest: string, marker: Marker): Promise<boolean> {
  const handle = await open(join(staging, MARKER_FILE), 'wx')
  try {
    await handle.writeFile(`${JSON.stringify(marker, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await syncDir(staging)
  // A copy that failed verification is replaced.
  await rm(dest, { recursive: true, force: true })
  try {
    await rename(staging, dest)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
    await rm(staging, { recursive: true, force: true })
    return false
  }
  await syncDir(dirname(dest))
  return true
}

/**
 * Replaces a committed folder's marker in one step (written and fsynced in `staging`, a folder
 * on the same disk, then renamed over the old one), so a crash leaves the old marker or the new.
 */
export async function rewriteMarker (dir: string, marker: Marker, staging: string): Promise<void> {
  const temp = join(staging, MARKER_FILE)
  const handle = await open(temp, 'w')
  try {
    await handle.writeFile(`${JSON.stringify(marker, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, join(dir, MARKER_FILE))
  await syncDir(dir)
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// A download whose process is gone, or that has not been touched for this long, is abandoned.
// (In a container the server is often pid 1 again after a restart, so the pid alone is not enough.)
const ABANDONED_MS = 60 * 60 * 1000

async function isAbandoned (dir: string, now: number): Promise<boolean> {
  const pid = Number(/^\.tmp-(\d+)-/.exec(basename(dir))?.[1])
  if (!isAlive(pid)) return true
  const names = await readdir(dir).catch(() => [])
  const times = await Promise.all([dir, ...names.map((n) => join(dir, n))].map(async (p) => (await stat(p).catch(() => undefined))?.mtimeMs ?? 0))
  return now - Math.max(...times) > ABANDONED_MS
}

/** A version folder in the cache, with when it was last used (the marker's mtime). */
export interface Entry {
  dir: string
  usedAt: number
}

async function subdirs (dir: string): Promise<string[]> {
  const items = await readdir(dir, { withFileTypes: true }).catch(() => [])
  return items.filter((d) => d.isDirectory()).map((d) => join(dir, d.name))
}

/**
 * Every version folder under one key folder, or (given the cache root) under all of them, most
 * recently used first. Abandoned downloads found on the way are deleted.
 */
export async function listEntries (root: string, oneKey?: string): Promise<Entry[]> {
  const keys = oneKey !== undefined ? [oneKey] : (await Promise.all((await subdirs(root)).map(subdirs))).flat()
  const now = Date.now()
  const entries: Entry[] = []
  for (const key of keys) {
    for (const dir of await subdirs(key)) {
      if (basename(dir).startsWith(STAGING_PREFIX)) {
        if (await isAbandoned(dir, now)) await rm(dir, { recursive: true, force: true })
        continue
      }
      const info = await stat(join(dir, MARKER_FILE)).catch(() => undefined)
      // A folder without a marker was never committed (or was damaged): it is not a cached copy.
      if (info === undefined) await rm(dir, { recursive: true, force: true })
      else entries.push({ dir, usedAt: info.mtimeMs })
    }
  }
  return entries.sort((a, b) => b.usedAt - a.usedAt)
}

/** Records a use, so the versions kept are the ones used last. */
export async function touchEntry (dir: string): Promise<void> {
  const now = new Date()
  await utimes(join(dir, MARKER_FILE), now, now)
}

/**
 * Keeps the `keep` most recently used versions in the whole cache, never one in use (during a
 * swap both the serving version and the new one are), and leaves the `spare` key folders alone.
 */
export async function pruneEntries (modelDir: string, keep: number, inUse: string | readonly string[], spare: readonly string[] = []): Promise<string[]> {
  const used = [...new Set(typeof inUse === 'string' ? [inUse] : inUse)]
  // Another store's key folder (the canary's, or the primary's for the canary) is that store's to
  // prune: only it knows which of its versions serve or are being warmed.
  const theirs = (dir: string) => spare.some((folder) => dirname(dir) === folder)
  const entries = (await listEntries(join(modelDir, CACHE_SUBDIR))).filter((e) => !used.includes(e.dir) && !theirs(e.dir))
  const removed = entries.slice(Math.max(0, keep - used.length)).map((e) => e.dir)
  for (const dir of removed) await rm(dir, { recursive: true, force: true })
  return removed
}
