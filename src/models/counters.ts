export interface LastDownload {
  bytes: number
  durationMs: number
  mbPerS: number
}

/** What /health shows about the model store (and what the metrics issue will export). */
export interface StoreStats {
  cacheHits: number
  cacheMisses: number
  /** Bytes received from S3 by this process, retransmissions included. */
  downloadedBytes: number
  retries: number
  lastDownload: LastDownload | undefined
}

export class StoreCounters {
  cacheHits = 0
  cacheMisses = 0
  downloadedBytes = 0
  retries = 0
  lastDownload: LastDownload | undefined

  recordDownload (bytes: number, durationMs: number): LastDownload {
    // MB = 10⁶ bytes, as network speeds are quoted; at least 1 ms so a tiny file is not infinite.
    const mbPerS = Math.round((bytes / 1e6 / (Math.max(durationMs, 1) / 1000)) * 10) / 10
    this.lastDownload = { bytes, durationMs: Math.round(durationMs), mbPerS }
    return this.lastDownload
  }

  snapshot (): StoreStats {
    return {
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      downloadedBytes: this.downloadedBytes,
      retries: this.retries,
      lastDownload: this.lastDownload === undefined ? undefined : { ...this.lastDownload }
    }
  }
}
