import type { S3Client } from '@aws-sdk/client-s3'
import { readFile, rm } from 'node:fs/promises'
import { join, posix } from 'node:path'
import type { ModelStoreConfig, S3Config } from '../config.js'
import { ConvertError } from '../convert/errors.js'
import { retrying } from './backoff.js'
import { MANIFEST_FILE, type Bundle } from './bundle.js'
import {
  CACHE_SUBDIR, MARKER_FILE, commitStaging, createStaging, inspectEntry, keyDir, listEntries, pruneEntries, touchEntry,
  versionName, type Marker
} from './cache.js'
import { readHead } from './conversion.js'
import { isConvertedFile, prepareCachedEntry, type OnConverting } from './converted.js'
import { SIDE_LABEL_FILES } from './labels.js'
import { StoreCounters } from './counters.js'
import { downloadObject, type RetryEvent } from './download.js'
import { ManifestError, parseManifest, type ModelSpec } from './manifest.js'
import {
  bucketExists, createS3Client, describeS3Error, explainS3Error, headObject, isMd5Etag, type ObjectVersion,
  type S3ClientOptions
} from './s3.js'
import { StoreError, withSideLabels, type DownloadProgress, type ModelStore, type ResolvedBundle } from './store.js'

/** The two pino methods the store logs with. */
export interface StoreLog {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface S3StoreOptions {
  s3: S3Config
  modelDir: string
  tuning: ModelStoreConfig
  /** Tests pass explicit credentials; production uses the SDK's default chain. */
  credentials?: S3ClientOptions['credentials']
  counters?: StoreCounters
  log?: StoreLog
  /** Keys in the same bucket that another store of this process serves (the canary's): never pruned by this one. */
  spareKeys?: readonly string[]
}

export interface RemoteBundle {
  model: ObjectVersion
  manifest: ObjectVersion | undefined
  /** Without a manifest: the label files found beside the model (SIDE_LABEL_FILES). */
  sideFiles: Array<[string, ObjectVersion]>
}

export interface S3Store extends ModelStore {
  readonly client: S3Client
  readonly counters: StoreCounters
  /** Where this key's versions are cached. */
  readonly keyFolder: string
  /** What S3 holds now (HEADs only), and the cache folder name of that version. */
  current: () => Promise<RemoteBundle & { version: string }>
}

const quiet: StoreLog = { info: () => {}, warn: () => {} }
// A bundle file name as the manifest schema allows it; anything else never becomes a path.
const SAFE_FILE = /^(?!\.\.?$)[A-Za-z0-9._-]{1,200}$/
// Names the cache writes itself; a published file may not take them.
const isReserved = (f: string) => f === MARKER_FILE || isConvertedFile(f)
const versionOf = (r: RemoteBundle) => versionName(r.model, r.manifest, r.sideFiles.map(([, v]) => v))
// A TF.js model.json starts with '{' (an ONNX or HDF5 file never does).
const isJsonStart = (head: Buffer) => head.toString('utf8').replace(/^\uFEFF/, '').trimStart().startsWith('{')
const PROGRESS_LOG_MS = 1000

/**
 * S3_BUCKET/S3_MODEL_KEY resolved to a verified local copy: HEAD the current version, use the
 * cached copy of exactly that version if it still verifies, otherwise download it. When S3
 * fails, a verified cached copy of an earlier version is served with the error (`source: cache`).
 */
export function s3Store (o: S3StoreOptions): S3Store {
  const { bucket, modelKey: key } = o.s3
  const where = `s3://${bucket}/${key}`
  const folder = posix.dirname(key)
  const sibling = (file: string) => (folder === '.' ? file : `${folder}/${file}`)
  const client = createS3Client({ ...o.s3, ...o.tuning, credentials: o.credentials })
  const counters = o.counters ?? new StoreCounters()
  const log = o.log ?? quiet
  const keyFolder = keyDir(o.modelDir, bucket, key)
  const retry = o.tuning.retry

  const onRetry = (e: RetryEvent) => {
    counters.retries++
    log.warn({ s3: `s3://${bucket}/${e.key}`, attempt: e.attempt, retryInMs: e.delayMs, resumeAt: e.offset, reason: e.reason }, 'S3 request failed; retrying')
  }
  const head = async (objectKey: string) => await retrying(() => headObject(client, bucket, objectKey), retry,
    (err) => describeS3Error(err).retryable,
    (attempt, delayMs, err) => onRetry({ key: objectKey, attempt, delayMs, offset: 0, reason: describeS3Error(err).code }))

  async function headBundle (): Promise<RemoteBundle> {
    const [model, manifest] = await Promise.allSettled([head(key), head(sibling(MANIFEST_FILE))])
    if (model.status === 'rejected') {
      const missing = describeS3Error(model.reason).status === 404 && !(await bucketExists(client, bucket).catch(() => true))
      throw explainS3Error(model.reason, where, missing ? 'bucket' : 'key')
    }
    if (manifest.status === 'fulfilled') return { model: model.value, manifest: manifest.value, sideFiles: [] }
    // A model with no manifest beside it is served with what the model file tells (DESIGN.md),
    // and labels from a JSON beside it: only the known names are asked for (no listing needed).
    if (describeS3Error(manifest.reason).status !== 404) throw explainS3Error(manifest.reason, `s3://${bucket}/${sibling(MANIFEST_FILE)}`)
    const side = await Promise.all(SIDE_LABEL_FILES.map(async (f) => await head(sibling(f)).then(
      (v) => [f, v] as [string, ObjectVersion],
      (err: unknown) => {
        if (describeS3Error(err).status === 404) return undefined
        throw explainS3Error(err, `s3://${bucket}/${sibling(f)}`)
      })))
    return { model: model.value, manifest: undefined, sideFiles: side.filter((e) => e !== undefined) }
  }

  /** A cached version that still matches what was verified, or undefined (and it is deleted). */
  async function openCached (dir: string): Promise<{ marker: Marker, spec: ModelSpec | undefined } | undefined> {
    const { marker, spec, problem } = await inspectEntry(dir)
    if (marker === undefined || marker.bucket !== bucket || marker.key !== key) return undefined
    if (problem !== undefined) {
      log.warn({ dir, problem }, 'cached model failed verification; deleting it')
      await rm(dir, { recursive: true, force: true })
      return undefined
    }
    return { marker, spec }
  }

  /**
   * A verified version made servable: a Keras/TF.js model converted (once; the marker keeps the
   * conversion), labels read from its side file. A model the converter refuses is a StoreError
   * that says a new version is needed: the same bytes are never converted twice.
   */
  async function serve (dir: string, marker: Marker, spec: ModelSpec | undefined, onConverting?: OnConverting): Promise<Bundle> {
    try {
      const prepared = await prepareCachedEntry({ dir, marker, stagingParent: keyFolder, what: where, declared: spec?.format, onConverting })
      const bundle: Bundle = { dir, modelFile: prepared.modelFile, spec, format: prepared.format }
      if (spec === undefined) bundle.sourceSha256 = marker.sha256[marker.file]
      if (prepared.converted !== undefined) bundle.sourceFile = join(dir, marker.file)
      if (prepared.summary !== undefined) bundle.conversion = prepared.summary
      return await withSideLabels(bundle, SIDE_LABEL_FILES.filter((f) => f in marker.sha256))
    } catch (err) {
      /* c8 ignore next -- a disk error while converting: reported as itself (and retried) */
      if (!(err instanceof ConvertError) && !(err instanceof ManifestError)) throw err
      throw new StoreError(`Unconvertible: ${where}: ${err.message} (this version cannot be served: publish a new one)`, { cause: err })
    }
  }

  async function fromCache (error: StoreError): Promise<ResolvedBundle> {
    for (const entry of await listEntries(join(o.modelDir, CACHE_SUBDIR), keyFolder)) {
      const cached = await openCached(entry.dir)
      if (cached === undefined) continue
      // A version that cannot be converted is kept (its bytes are verified) but never served.
      const bundle = await serve(entry.dir, cached.marker, cached.spec).catch((err: unknown) => {
        if (err instanceof StoreError) return undefined
        /* c8 ignore next -- a disk error while converting an older version */
        throw err
      })
      if (bundle === undefined) continue
      await touchEntry(bundle.dir)
      log.warn({ reason: error.message, dir: bundle.dir }, 'S3 failed; serving the verified cached copy')
      return { ...bundle, source: 'cache', sourceError: error.message }
    }
    throw error
  }

  async function fetchBundle (remote: RemoteBundle, version: string, onProgress: (p: DownloadProgress) => void): Promise<{ dir: string, marker: Marker, spec: ModelSpec | undefined }> {
    const started = performance.now()
    const dest = join(keyFolder, version)
    const staging = await createStaging(keyFolder)
    const received = new Map<string, number>()
    let totalBytes = remote.model.size + (remote.manifest?.size ?? 0)
    let loggedAt = started
    const progress = (file: string) => (bytes: number, delta: number) => {
      received.set(file, bytes)
      counters.downloadedBytes += delta
      let downloadedBytes = 0
      for (const n of received.values()) downloadedBytes += n
      onProgress({ downloadedBytes, totalBytes })
      const now = performance.now()
      if (now - loggedAt < PROGRESS_LOG_MS) return
      loggedAt = now
      log.info({ s3: where, downloadedBytes, totalBytes, mbPerS: Math.round(downloadedBytes / 1e3 / (now - started) * 10) / 10 }, 'downloading model')
    }
    const fetch = async (object: ObjectVersion, file: string, expect: { sha256?: string, md5?: string } = {}) => await downloadObject({
      client, bucket, object, dest: join(staging, file), ...expect, streams: o.tuning.downloadStreams,
      partSize: o.tuning.partSizeBytes, retry, onProgress: progress(file), onRetry
    })
    try {
      const sha256: Record<string, string> = {}
      let spec: ModelSpec | undefined
      let extras: Array<[string, ObjectVersion]> = []
      if (remote.manifest !== undefined) {
        // The manifest first (it is tiny): it pins the hashes, and a bad one costs no model download.
        sha256[MANIFEST_FILE] = (await fetch(remote.manifest, MANIFEST_FILE)).sha256
        spec = parseManifest(await readFile(join(staging, MANIFEST_FILE), 'utf8'))
        if (spec.file !== posix.basename(key)) {
          throw new StoreError(`ManifestMismatch: ${where}: the manifest beside it describes "${spec.file}"`)
        }
        const others = Object.keys(spec.sha256).filter((f) => f !== spec?.file && f !== MANIFEST_FILE)
        const unsafe = others.find((f) => !SAFE_FILE.test(f) || isReserved(f))
        if (unsafe !== undefined) throw new StoreError(`ManifestInvalid: ${where}: the manifest lists an unsafe file name "${unsafe}"`)
        extras = await Promise.all(others.map(async (f) => [f, await head(sibling(f))] as [string, ObjectVersion]))
      } else {
        extras = remote.sideFiles
      }
      for (const [, v] of extras) totalBytes += v.size
      const file = spec?.file ?? (SAFE_FILE.test(posix.basename(key)) ? posix.basename(key) : 'model.onnx')
      const pinned = spec?.sha256[file]
      const md5 = pinned === undefined && isMd5Etag(remote.model.etag) ? remote.model.etag : undefined
      const verifiedBy: Marker['verifiedBy'] = pinned !== undefined ? 'sha256' : md5 !== undefined ? 'etag-md5' : 'none'
      if (verifiedBy === 'none') log.warn({ s3: where }, 'the model cannot be verified: no sha256 in a manifest, and its ETag is not an MD5 (multipart upload)')
      const unpinned = (f: string, v: ObjectVersion) => ({ sha256: spec?.sha256[f], md5: spec?.sha256[f] === undefined && isMd5Etag(v.etag) ? v.etag : undefined })
      const files = await Promise.all([
        fetch(remote.model, file, { sha256: pinned, md5 }).then((r) => [file, r] as const),
        ...extras.map(async ([f, v]) => [f, await fetch(v, f, unpinned(f, v))] as const)
      ])
      // A TF.js model.json names its weight shards: they are fetched beside it (after it: the
      // names come from inside it), checked to be plain file names in the same folder.
      if (isJsonStart(await readHead(join(staging, file), 64))) {
        const { shardPaths } = await import('../convert/tfjs.js')
        const json = JSON.parse(await readFile(join(staging, file), 'utf8')) as { weightsManifest?: unknown }
        const have = new Set(files.map(([f]) => f))
        const shards = json.weightsManifest === undefined ? [] : shardPaths(json.weightsManifest, where).filter((f) => !have.has(f))
        const reserved = shards.find((f) => isReserved(f) || f === MANIFEST_FILE)
        if (reserved !== undefined) throw new StoreError(`ManifestInvalid: ${where}: model.json names a reserved shard file "${reserved}"`)
        const heads = await Promise.all([...new Set(shards)].map(async (f) => [f, await head(sibling(f))] as [string, ObjectVersion]))
        for (const [, v] of heads) totalBytes += v.size
        files.push(...await Promise.all(heads.map(async ([f, v]) => [f, await fetch(v, f, unpinned(f, v))] as const)))
      }
      let bytes = 0
      for (const [f, r] of files) {
        sha256[f] = r.sha256
        bytes += r.bytes
      }
      const marker: Marker = { bucket, key, version, file, sha256, verifiedBy, downloadedAt: new Date().toISOString() }
      if (!(await commitStaging(staging, dest, marker))) {
        // Another process committed this version first; its copy is used once it verifies.
        const theirs = await openCached(dest)
        if (theirs === undefined) throw new StoreError(`CacheConflict: ${where}: another process wrote ${dest} and it does not verify`)
        return { dir: dest, ...theirs }
      }
      const last = counters.recordDownload(bytes + (remote.manifest?.size ?? 0), performance.now() - started)
      log.info({ s3: where, version, dir: dest, ...last, verifiedBy }, 'model downloaded and verified')
      return { dir: dest, marker, spec }
    } catch (err) {
      await rm(staging, { recursive: true, force: true })
      throw err
    }
  }

  async function prune (inUse: readonly string[]): Promise<void> {
    const removed = await pruneEntries(o.modelDir, o.tuning.cacheKeep, inUse, (o.spareKeys ?? []).map((k) => keyDir(o.modelDir, bucket, k)))
    if (removed.length > 0) log.info({ removed, keep: o.tuning.cacheKeep }, 'removed older cached models')
  }

  return {
    client,
    counters,
    keyFolder,
    async current () {
      try {
        const remote = await headBundle()
        return { ...remote, version: versionOf(remote) }
      } catch (err) {
        throw explainS3Error(err, where)
      }
    },
    async resolve (onProgress = () => {}, onConverting, options = {}) {
      const { replacing } = options
      const fail = async (err: unknown) => {
        if (replacing !== undefined) throw explainS3Error(err, where)
        return await fromCache(explainS3Error(err, where))
      }
      let remote: RemoteBundle
      try {
        remote = await headBundle()
      } catch (err) {
        return await fail(err)
      }
      const version = versionOf(remote)
      const dir = join(keyFolder, version)
      const cached = await openCached(dir)
      let source: 'cache' | 's3' = 'cache'
      let entry: { dir: string, marker: Marker, spec: ModelSpec | undefined }
      if (cached !== undefined) {
        counters.cacheHits++
        await touchEntry(dir)
        log.info({ s3: where, version, dir }, 'model cache hit: a verified copy of the current S3 version')
        entry = { dir, ...cached }
      } else {
        counters.cacheMisses++
        try {
          entry = await fetchBundle(remote, version, onProgress)
        } catch (err) {
          return await fail(err)
        }
        source = 's3'
      }
      let bundle: Bundle
      try {
        bundle = await serve(entry.dir, entry.marker, entry.spec, onConverting)
      } catch (err) {
        return await fail(err)
      }
      await prune(replacing === undefined ? [bundle.dir] : [bundle.dir, replacing.keep])
      return { ...bundle, source }
    }
  }
}
