import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { threadBudget, type ThreadBudget } from './thread-budget.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const SWAP_MODES = ['live', 'restart'] as const
export type SwapMode = typeof SWAP_MODES[number]

// One schema gives types, defaults, coercion and error messages that name the variable
// ("env/PORT must be integer"). Names of the seed service are kept (DESIGN.md).
const ENV_SCHEMA = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8000 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  MODEL_DIR: Type.String({ minLength: 1, default: './models' }),
  MODEL_PATH: Type.String({ minLength: 1, default: './models/demo' }),
  S3_BUCKET: Type.Optional(Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-zA-Z0-9.\\-_]+$' })),
  S3_MODEL_KEY: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  S3_REGION: Type.Optional(Type.String({ minLength: 1 })),
  AWS_REGION: Type.Optional(Type.String({ minLength: 1 })),
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  // Model store (README "S3 model store"). The SDK has no timeouts of its own.
  S3_CONNECT_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 600, default: 5 }),
  // No byte for this long (headers or body) aborts the request; it is retried and resumed.
  S3_STALL_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 20 }),
  S3_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
  S3_RETRY_BASE_MS: Type.Integer({ minimum: 1, maximum: 60000, default: 250 }),
  // Longest wait between retries, and between boot attempts while S3 stays unusable.
  S3_RETRY_MAX_S: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 30 }),
  // Ranged GETs in flight per file (1 = one stream). Measured (README): on par with one stream
  // on loopback, 3× faster when one connection is capped (as S3 caps it at 50-100 MB/s).
  S3_DOWNLOAD_STREAMS: Type.Integer({ minimum: 1, maximum: 32, default: 4 }),
  S3_PART_SIZE_MB: Type.Integer({ minimum: 1, maximum: 1024, default: 16 }),
  // Verified model versions kept under MODEL_DIR (the one in use is always kept).
  MODEL_CACHE_KEEP: Type.Integer({ minimum: 1, maximum: 100, default: 2 }),
  // Seconds between checks for a new model version (jittered ±20 %); 0 = only on SIGHUP.
  MODEL_POLL_S: Type.Number({ minimum: 0, maximum: 86400, default: 60 }),
  // live: warm the new version beside the old one and switch; restart: drain and exit 0.
  // restart by default: with glibc's malloc, RSS grew ~4 MiB per live swap (README "Swap benchmark").
  MODEL_SWAP: Type.Enum(SWAP_MODES, { default: 'restart' }),
  // A second model for a sticky share of analyses: a key in S3_BUCKET, or a local path.
  MODEL_CANARY_KEY: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  MODEL_CANARY_PATH: Type.Optional(Type.String({ minLength: 1 })),
  MODEL_CANARY_PERCENT: Type.Number({ minimum: 0, maximum: 100, default: 0 }),
  // Unset: derived from the cores (src/thread-budget.ts, README "Threads").
  WORKERS: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
  // ONNX Runtime threads per worker; WORKERS × this should not exceed the cores (README).
  INTRA_OP_THREADS: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  // Nice value of every thread but the event loop's (src/thread-priority.ts); 0 = equal priority.
  BACKGROUND_NICE: Type.Integer({ minimum: 0, maximum: 19, default: 10 }),
  // Inference tasks waiting for a worker; beyond it requests get 503 OVERLOADED at once.
  QUEUE_SIZE: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
  MAX_UPLOAD_MB: Type.Number({ exclusiveMinimum: 0, maximum: 1024, default: 100 }),
  MAX_IMAGE_PIXELS: Type.Integer({ minimum: 1024, default: 120_000_000 }),
  REQUEST_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 900 }),
  INFERENCE_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 30 }),
  // Above nginx's upstream keepalive_timeout (60 s) so Node never closes a socket nginx reuses.
  KEEP_ALIVE_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 65 }),
  // An upload that sends nothing for this long is stopped (408); slow links still trickle.
  UPLOAD_STALL_TIMEOUT_S: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 30 }),
  // Analyses per client IP per window; generous, since offices share one address.
  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 600 }),
  RATE_LIMIT_WINDOW_S: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 60 }),
  SHUTDOWN_GRACE_S: Type.Number({ minimum: 0, maximum: 86400, default: 30 }),
  CORS_ORIGINS: Type.String({ default: '*' }),
  // How long browsers may cache a preflight answer; Chromium caps it at 7200 s, Firefox at 86400.
  CORS_MAX_AGE_S: Type.Integer({ minimum: 0, maximum: 86400, default: 600 }),
  // Who may set X-Forwarded-For: "loopback" trusts nginx on the same host; behind an ALB
  // also its VPC addresses ("loopback,uniquelocal", .ebextensions). Fastify 5 ignores hop
  // counts (it cannot verify the peer), so only addresses, CIDRs, names or true/false.
  TRUST_PROXY: Type.String({ minLength: 1, default: 'loopback' }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info' })
})

type Env = Static<typeof ENV_SCHEMA>

export interface S3Config {
  readonly bucket: string
  readonly modelKey: string
  readonly region: string
  readonly endpoint: string | undefined
  readonly forcePathStyle: boolean
}

/** Where a model comes from: a key in S3, or a local bundle folder or file. */
export type ModelSource = { readonly kind: 's3', readonly s3: S3Config } | { readonly kind: 'local', readonly path: string }

/** A second model for a share of the clients. */
export interface CanaryConfig {
  /** MODEL_CANARY_KEY (in the primary's bucket) or MODEL_CANARY_PATH. */
  readonly source: ModelSource
  /** 0–100: the share of clients (by X-Client-Id, else IP) answered by the canary. */
  readonly percent: number
}

export interface ModelStoreConfig {
  readonly cacheKeep: number
  readonly connectTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly retry: { readonly maxAttempts: number, readonly baseDelayMs: number, readonly maxDelayMs: number }
  readonly downloadStreams: number
  readonly partSizeBytes: number
}

export interface Config {
  readonly port: number
  readonly host: string
  readonly modelDir: string
  readonly modelPath: string
  readonly s3: S3Config | undefined
  readonly modelStore: ModelStoreConfig
  /** 0 = no polling (SIGHUP still checks). */
  readonly modelPollMs: number
  readonly modelSwap: SwapMode
  readonly canary: CanaryConfig | undefined
  readonly workers: number
  readonly intraOpThreads: number
  readonly backgroundNice: number
  /** Workers, ONNX Runtime threads, libuv pool and decode threads, from the cores. */
  readonly threads: ThreadBudget
  readonly queueSize: number
  readonly maxUploadBytes: number
  readonly maxImagePixels: number
  readonly requestTimeoutMs: number
  readonly inferenceTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly shutdownGraceMs: number
  readonly uploadStallMs: number
  /** 0 turns rate limiting off. */
  readonly rateLimitMax: number
  readonly rateLimitWindowMs: number
  readonly corsOrigins: '*' | readonly string[]
  readonly corsMaxAgeS: number
  readonly trustProxy: boolean | readonly string[]
  readonly logLevel: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

// Queue depth per worker: enough that a burst of `8 × workers` concurrent uploads waits
// instead of failing, while memory stays bounded (one 224×224×3 float tensor is ~0.6 MB).
const QUEUE_PER_WORKER = 8

export function loadConfig (env: NodeJS.ProcessEnv, cores = availableParallelism()): Config {
  let raw: Env
  try {
    raw = envSchema<Env>({ schema: ENV_SCHEMA, data: { ...env }, env: false, dotenv: false })
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`)
  }
  if ((raw.S3_BUCKET === undefined) !== (raw.S3_MODEL_KEY === undefined)) {
    throw new ConfigError('invalid configuration: S3_BUCKET and S3_MODEL_KEY must be set together')
  }
  const s3: S3Config | undefined = raw.S3_BUCKET === undefined || raw.S3_MODEL_KEY === undefined
    ? undefined
    : Object.freeze({
      bucket: raw.S3_BUCKET,
      modelKey: raw.S3_MODEL_KEY,
      region: raw.S3_REGION ?? raw.AWS_REGION ?? 'us-east-1',
      endpoint: raw.S3_ENDPOINT,
      forcePathStyle: raw.S3_FORCE_PATH_STYLE
    })
  const threads = threadBudget({ cores, workers: raw.WORKERS, intraOpThreads: raw.INTRA_OP_THREADS, backgroundNice: raw.BACKGROUND_NICE, uvThreadpoolEnv: env.UV_THREADPOOL_SIZE })
  return Object.freeze({
    port: raw.PORT,
    host: raw.HOST,
    modelDir: raw.MODEL_DIR,
    modelPath: raw.MODEL_PATH,
    s3,
    modelStore: Object.freeze({
      cacheKeep: raw.MODEL_CACHE_KEEP,
      connectTimeoutMs: raw.S3_CONNECT_TIMEOUT_S * 1000,
      stallTimeoutMs: raw.S3_STALL_TIMEOUT_S * 1000,
      retry: Object.freeze({ maxAttempts: raw.S3_MAX_ATTEMPTS, baseDelayMs: raw.S3_RETRY_BASE_MS, maxDelayMs: raw.S3_RETRY_MAX_S * 1000 }),
      downloadStreams: raw.S3_DOWNLOAD_STREAMS,
      partSizeBytes: raw.S3_PART_SIZE_MB * 1024 * 1024
    }),
    modelPollMs: raw.MODEL_POLL_S * 1000,
    modelSwap: raw.MODEL_SWAP as SwapMode,
    canary: canaryConfig(raw, s3),
    workers: threads.workers,
    intraOpThreads: threads.intraOpThreads,
    backgroundNice: threads.backgroundNice,
    threads,
    queueSize: raw.QUEUE_SIZE ?? threads.workers * QUEUE_PER_WORKER,
    maxUploadBytes: Math.floor(raw.MAX_UPLOAD_MB * 1024 * 1024),
    maxImagePixels: raw.MAX_IMAGE_PIXELS,
    requestTimeoutMs: raw.REQUEST_TIMEOUT_S * 1000,
    inferenceTimeoutMs: raw.INFERENCE_TIMEOUT_S * 1000,
    keepAliveTimeoutMs: raw.KEEP_ALIVE_TIMEOUT_S * 1000,
    shutdownGraceMs: raw.SHUTDOWN_GRACE_S * 1000,
    uploadStallMs: raw.UPLOAD_STALL_TIMEOUT_S * 1000,
    rateLimitMax: raw.RATE_LIMIT_MAX,
    rateLimitWindowMs: raw.RATE_LIMIT_WINDOW_S * 1000,
    corsOrigins: parseOrigins(raw.CORS_ORIGINS),
    corsMaxAgeS: raw.CORS_MAX_AGE_S,
    trustProxy: parseTrustProxy(raw.TRUST_PROXY),
    logLevel: raw.LOG_LEVEL
  })
}

function canaryConfig (raw: Env, s3: S3Config | undefined): CanaryConfig | undefined {
  const { MODEL_CANARY_KEY: key, MODEL_CANARY_PATH: path, MODEL_CANARY_PERCENT: percent } = raw
  if (key !== undefined && path !== undefined) {
    throw new ConfigError('invalid configuration: set MODEL_CANARY_KEY or MODEL_CANARY_PATH, not both')
  }
  if (key !== undefined) {
    if (s3 === undefined) throw new ConfigError('invalid configuration: MODEL_CANARY_KEY is a key in S3_BUCKET, which is not set (use MODEL_CANARY_PATH for a local canary)')
    if (key === s3.modelKey) throw new ConfigError('invalid configuration: MODEL_CANARY_KEY is S3_MODEL_KEY itself; a canary is a second key')
    return Object.freeze({ source: Object.freeze({ kind: 's3' as const, s3: Object.freeze({ ...s3, modelKey: key }) }), percent })
  }
  if (path !== undefined) return Object.freeze({ source: Object.freeze({ kind: 'local' as const, path }), percent })
  // A share with no model to send it to is a mistake worth stopping for, not a silent 0.
  if (percent > 0) throw new ConfigError(`invalid configuration: MODEL_CANARY_PERCENT is ${percent} but neither MODEL_CANARY_KEY nor MODEL_CANARY_PATH is set`)
  return undefined
}

function parseOrigins (value: string): '*' | readonly string[] {
  const origins = value.split(',').map((o) => o.trim()).filter((o) => o.length > 0)
  if (origins.length === 0 || origins.includes('*')) return '*'
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`invalid configuration: CORS_ORIGINS entry "${origin}" must look like https://host[:port]`)
    }
  }
  return Object.freeze(origins)
}

// proxy-addr's names for address ranges, as Fastify's trustProxy accepts them.
const TRUST_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function parseTrustProxy (value: string): boolean | readonly string[] {
  const v = value.trim()
  if (v === 'true' || v === 'false') return v === 'true'
  const entries = v.split(',').map((e) => e.trim()).filter((e) => e.length > 0)
  for (const entry of entries) {
    if (!isTrustEntry(entry)) {
      throw new ConfigError(`invalid configuration: TRUST_PROXY entry "${entry}" must be an IP address, a CIDR range, loopback, linklocal or uniquelocal`)
    }
  }
  return Object.freeze(entries)
}

function isTrustEntry (entry: string): boolean {
  if (TRUST_NAMES.has(entry)) return true
  const [addr, bits, ...rest] = entry.split('/')
  const family = isIP(addr)
  if (family === 0 || rest.length > 0) return false
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
}
