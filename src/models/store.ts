import { openBundle, type Bundle } from './bundle.js'

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
 * Finds a verified bundle on local disk, fetching it first if needed. Each implementation
 * returns only bundles whose pinned hashes match.
 */
export interface ModelStore {
  resolve: (onProgress?: (progress: DownloadProgress) => void) => Promise<ResolvedBundle>
}

/** MODEL_PATH served as it is (no S3 configured). */
export function localStore (modelPath: string): ModelStore {
  return {
    async resolve () {
      return { ...(await openBundle(modelPath)), source: 'local' }
    }
  }
}
