import { GetObjectCommand } from '@aws-sdk/client-s3'
import { basename, join } from 'node:path'
import { MANIFEST_FILE } from './bundle.js'
import { hashFile } from './bundle.js'
import { CACHE_SUBDIR, inspectEntry, listEntries, type Marker } from './cache.js'
import { parseManifest } from './manifest.js'
import { isMd5Etag } from './s3.js'
import type { S3Store } from './s3-store.js'

export interface VerifiedEntry {
  dir: string
  version: string | undefined
  /** Undefined when every file re-hashes to what was verified at download. */
  problem: string | undefined
  /** This folder is the version S3 holds now. */
  current: boolean
  /** For the current version: whether the local hashes match what S3's manifest (or ETag) says. */
  s3: 'match' | 'differs' | 'unverifiable' | undefined
}

type Current = Awaited<ReturnType<S3Store['current']>>

export interface VerifyReport {
  entries: VerifiedEntry[]
  /** The cache folder name of S3's current version, when S3 answered. */
  currentVersion: string | undefined
  s3Error: string | undefined
  ok: boolean
}

/** Compares a cached current version with what S3 publishes about it. */
async function compareWithS3 (store: S3Store, current: Current, dir: string, marker: Marker): Promise<VerifiedEntry['s3']> {
  if (current.manifest !== undefined) {
    const out = await store.client.send(new GetObjectCommand({ Bucket: marker.bucket, Key: current.manifest.key }))
    const pinned = Object.entries(parseManifest(await out.Body!.transformToString()).sha256)
    if (pinned.length === 0) return 'unverifiable'
    return pinned.every(([f, sha]) => marker.sha256[f] === sha.toLowerCase()) ? 'match' : 'differs'
  }
  if (!isMd5Etag(current.model.etag)) return 'unverifiable'
  return (await hashFile(join(dir, marker.file), 'md5')) === current.model.etag.toLowerCase() ? 'match' : 'differs'
}

/**
 * `shine-models verify`: re-hashes every cached version of the store's key against its manifest,
 * then checks the current one against S3: its manifest's pinned sha256, or for a bundle without
 * manifest the ETag when that is an MD5. Nothing is deleted or downloaded.
 */
export async function verifyCache (store: S3Store, modelDir: string): Promise<VerifyReport> {
  const entries: VerifiedEntry[] = []
  let current: Current | undefined
  let s3Error: string | undefined
  try {
    current = await store.current()
  } catch (err) {
    s3Error = (err as Error).message
  }
  for (const entry of await listEntries(join(modelDir, CACHE_SUBDIR), store.keyFolder)) {
    const { marker, spec, problem } = await inspectEntry(entry.dir)
    const isCurrent = basename(entry.dir) === current?.version
    const s3 = isCurrent && problem === undefined ? await compareWithS3(store, current!, entry.dir, marker!) : undefined
    const unpinned = marker !== undefined && !(MANIFEST_FILE in marker.sha256)
    entries.push({ dir: entry.dir, version: spec?.version ?? (unpinned ? 'no manifest' : undefined), problem, current: isCurrent, s3 })
  }
  const ok = s3Error === undefined && entries.every((e) => e.problem === undefined) &&
    entries.some((e) => e.current && e.s3 !== 'differs')
  return { entries, currentVersion: current?.version, s3Error, ok }
}
