// What version a model source holds now, cheaply enough to ask every MODEL_POLL_S: HEADs for S3,
// stat for a local folder. The identity changes with every new version; the version is what a
// person reads in /health.
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { MANIFEST_FILE } from './bundle.js'
import type { OnConverting } from './converted.js'
import type { S3Store } from './s3-store.js'
import type { DownloadProgress, ModelStore, ResolvedBundle, ResolveOptions } from './store.js'

export interface SourceVersion {
  /** Changes whenever the source changes (S3: the cache folder name of ETags/VersionIds). */
  identity: string
  /** The manifest's version when it can be told without a download, else the identity. */
  version: string
}

/** A bundle resolved for serving, with the identity of the version it is. */
export interface Candidate {
  bundle: ResolvedBundle
  identity: string
}

export interface WatchedSource {
  probe: () => Promise<SourceVersion>
  resolve: (onProgress?: (p: DownloadProgress) => void, onConverting?: OnConverting, options?: ResolveOptions) => Promise<Candidate>
}

/**
 * A local bundle's identity: name, size and mtime of each file in its folder. Dot files are left
 * out: atomic writers (scripts/bundle-writer.ts) stage there before the rename.
 */
export async function localIdentity (modelPath: string): Promise<string> {
  const dir = await bundleDir(modelPath)
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort()
  const parts = await Promise.all(names.map(async (n) => {
    const s = await stat(join(dir, n))
    return `${n}:${s.size}:${s.mtimeMs}`
  }))
  return parts.join('|')
}

// MODEL_PATH is a bundle folder or a model file in one (DESIGN.md).
async function bundleDir (modelPath: string): Promise<string> {
  return (await stat(modelPath)).isDirectory() ? modelPath : dirname(modelPath)
}

async function manifestVersion (dir: string): Promise<string | undefined> {
  const raw = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => undefined)
  if (raw === undefined) return undefined
  try {
    const version = (JSON.parse(raw) as { version?: unknown }).version
    return typeof version === 'string' ? version : undefined
  } catch {
    return undefined
  }
}

export function watchLocal (store: ModelStore, modelPath: string): WatchedSource {
  return {
    async probe () {
      const identity = await localIdentity(modelPath)
      return { identity, version: await manifestVersion(await bundleDir(modelPath)) ?? identity }
    },
    async resolve (onProgress, onConverting, options) {
      // Taken before reading, so a change made while this version loads is seen by the next
      // check. A path that is missing is the store's to explain (its message names the path).
      const identity = await localIdentity(modelPath).catch(() => '')
      return { bundle: await store.resolve(onProgress, onConverting, options), identity }
    }
  }
}

export function watchS3 (store: S3Store): WatchedSource {
  return {
    async probe () {
      const now = await store.current()
      // `shine-models push` records the manifest's version on the model object.
      return { identity: now.version, version: now.model.metadata['model-version'] ?? now.version }
    },
    async resolve (onProgress, onConverting, options) {
      const bundle = await store.resolve(onProgress, onConverting, options)
      // The version folder the store served is the version it is (an S3 push may land between
      // a probe and this resolve).
      return { bundle, identity: basename(bundle.dir) }
    }
  }
}
