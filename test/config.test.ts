import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('defaults follow DESIGN.md', async (t) => {
  const c = loadConfig({}, 6)
  t.equal(c.port, 8000)
  t.equal(c.host, '0.0.0.0')
  t.equal(c.modelDir, './models')
  t.equal(c.modelPath, './models/demo')
  t.equal(c.s3, undefined)
  t.equal(c.workers, 6, 'WORKERS defaults to the available cores')
  t.equal(c.intraOpThreads, 1)
  t.match(c.threads, { cores: 6, workers: 6, intraOpThreads: 1, uvThreadpool: 4, decodeThreads: 1, backgroundNice: 10 })
  t.equal(c.backgroundNice, 10, 'every thread but the event loop\'s at nice 10')
  t.equal(c.queueSize, 48)
  t.equal(c.maxUploadBytes, 100 * 1024 * 1024)
  t.equal(c.maxImagePixels, 120_000_000)
  t.equal(c.requestTimeoutMs, 900_000)
  t.equal(c.corsOrigins, '*')
  t.equal(c.corsMaxAgeS, 600)
  t.equal(c.logLevel, 'info')
  t.ok(Object.isFrozen(c))
})

t.test('values are coerced from strings', async (t) => {
  const c = loadConfig({
    PORT: '9001', WORKERS: '3', MAX_UPLOAD_MB: '2.5', S3_BUCKET: 'models-bucket', S3_MODEL_KEY: 'a/b/model.onnx',
    S3_FORCE_PATH_STYLE: 'true', S3_ENDPOINT: 'http://127.0.0.1:9000', AWS_REGION: 'eu-west-1',
    CORS_ORIGINS: 'https://a.example, http://localhost:3000', QUEUE_SIZE: '5', CORS_MAX_AGE_S: '0'
  }, 2)
  t.equal(c.corsMaxAgeS, 0, 'browsers do not cache preflights')
  t.equal(c.port, 9001)
  t.equal(c.workers, 3)
  t.equal(c.queueSize, 5)
  t.equal(c.maxUploadBytes, Math.floor(2.5 * 1024 * 1024))
  t.same(c.s3, { bucket: 'models-bucket', modelKey: 'a/b/model.onnx', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true })
  t.same(c.corsOrigins, ['https://a.example', 'http://localhost:3000'])
  t.equal(loadConfig({ CORS_ORIGINS: ' , ' }).corsOrigins, '*', 'an empty list means any origin')
  t.equal(loadConfig({ CORS_ORIGINS: 'https://a.example,*' }).corsOrigins, '*')
  t.equal(loadConfig({ S3_BUCKET: 'bkt', S3_MODEL_KEY: 'k', S3_REGION: 'ap-south-1', AWS_REGION: 'eu-west-1' }).s3?.region, 'ap-south-1')
})

t.test('a bad value fails with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT must be integer/],
    [{ PORT: '70000' }, /PORT must be <= 65535/],
    [{ WORKERS: '0' }, /WORKERS must be >= 1/],
    [{ BACKGROUND_NICE: '20' }, /BACKGROUND_NICE must be <= 19/],
    [{ BACKGROUND_NICE: '-5' }, /BACKGROUND_NICE must be >= 0/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be equal to one of the allowed values/],
    [{ MAX_UPLOAD_MB: '-1' }, /MAX_UPLOAD_MB must be > 0/],
    [{ MAX_IMAGE_PIXELS: '1.5' }, /MAX_IMAGE_PIXELS must be integer/],
    [{ S3_FORCE_PATH_STYLE: 'maybe' }, /S3_FORCE_PATH_STYLE must be boolean/],
    [{ S3_ENDPOINT: 'localhost:9000' }, /S3_ENDPOINT must match pattern/],
    [{ S3_BUCKET: 'only-bucket' }, /S3_BUCKET and S3_MODEL_KEY must be set together/],
    [{ CORS_ORIGINS: 'example.com' }, /CORS_ORIGINS entry "example.com"/],
    [{ CORS_MAX_AGE_S: 'ten' }, /CORS_MAX_AGE_S must be integer/],
    [{ CORS_MAX_AGE_S: '-1' }, /CORS_MAX_AGE_S must be >= 0/],
    [{ CORS_MAX_AGE_S: '90000' }, /CORS_MAX_AGE_S must be <= 86400/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  t.ok(new ConfigError('x') instanceof Error)
})

t.test('the process environment is not read behind the caller\'s back', async (t) => {
  process.env.PORT = 'not-a-port'
  t.teardown(() => { delete process.env.PORT })
  t.equal(loadConfig({}).port, 8000)
})

t.test('S3 region falls back to us-east-1', async (t) => {
  t.equal(loadConfig({ S3_BUCKET: 'bkt', S3_MODEL_KEY: 'k' }).s3?.region, 'us-east-1')
})

t.test('model store settings: defaults, units and messages naming the variable', async (t) => {
  t.same(loadConfig({}).modelStore, {
    cacheKeep: 2,
    connectTimeoutMs: 5000,
    stallTimeoutMs: 20_000,
    retry: { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 30_000 },
    downloadStreams: 4,
    partSizeBytes: 16 * 1024 * 1024
  })
  const c = loadConfig({
    MODEL_CACHE_KEEP: '5', S3_CONNECT_TIMEOUT_S: '0.5', S3_STALL_TIMEOUT_S: '2', S3_MAX_ATTEMPTS: '3', S3_RETRY_BASE_MS: '10',
    S3_RETRY_MAX_S: '1.5', S3_DOWNLOAD_STREAMS: '1', S3_PART_SIZE_MB: '8'
  })
  t.same(c.modelStore, { cacheKeep: 5, connectTimeoutMs: 500, stallTimeoutMs: 2000, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 1500 }, downloadStreams: 1, partSizeBytes: 8 * 1024 * 1024 })
  t.ok(Object.isFrozen(c.modelStore) && Object.isFrozen(c.modelStore.retry))
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ MODEL_CACHE_KEEP: '0' }, /MODEL_CACHE_KEEP must be >= 1/],
    [{ S3_CONNECT_TIMEOUT_S: '0' }, /S3_CONNECT_TIMEOUT_S must be > 0/],
    [{ S3_STALL_TIMEOUT_S: 'never' }, /S3_STALL_TIMEOUT_S must be number/],
    [{ S3_MAX_ATTEMPTS: '2.5' }, /S3_MAX_ATTEMPTS must be integer/],
    [{ S3_RETRY_BASE_MS: '0' }, /S3_RETRY_BASE_MS must be >= 1/],
    [{ S3_RETRY_MAX_S: '-1' }, /S3_RETRY_MAX_S must be > 0/],
    [{ S3_DOWNLOAD_STREAMS: '64' }, /S3_DOWNLOAD_STREAMS must be <= 32/],
    [{ S3_PART_SIZE_MB: '0' }, /S3_PART_SIZE_MB must be >= 1/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('model watch and swap: defaults, units and messages naming the variable', async (t) => {
  const d = loadConfig({})
  t.equal(d.modelPollMs, 60_000)
  t.equal(d.modelSwap, 'restart', 'restart by default: RSS grows per live swap (README)')
  const c = loadConfig({ MODEL_POLL_S: '0.5', MODEL_SWAP: 'live' })
  t.equal(c.modelPollMs, 500)
  t.equal(c.modelSwap, 'live')
  t.equal(loadConfig({ MODEL_POLL_S: '0' }).modelPollMs, 0, '0 turns polling off')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ MODEL_POLL_S: '-1' }, /MODEL_POLL_S must be >= 0/],
    [{ MODEL_POLL_S: 'often' }, /MODEL_POLL_S must be number/],
    [{ MODEL_SWAP: 'hot' }, /MODEL_SWAP must be equal to one of the allowed values/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('canary: a key in the bucket or a local path, a share 0–100, and mistakes named', async (t) => {
  t.equal(loadConfig({}).canary, undefined, 'no canary by default')
  t.equal(loadConfig({ MODEL_CANARY_PERCENT: '0' }).canary, undefined, '0 % with no canary model is the default, not a mistake')
  const s3 = { S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/live/model.onnx', S3_REGION: 'eu-west-1' }
  t.same(loadConfig({ ...s3, MODEL_CANARY_KEY: 'skin/canary/model.h5', MODEL_CANARY_PERCENT: '12.5' }).canary, {
    source: { kind: 's3', s3: { bucket: 'models', modelKey: 'skin/canary/model.h5', region: 'eu-west-1', endpoint: undefined, forcePathStyle: false } },
    percent: 12.5
  }, 'the primary\'s bucket and connection, the canary\'s key')
  t.same(loadConfig({ MODEL_CANARY_PATH: '/srv/canary' }).canary, { source: { kind: 'local', path: '/srv/canary' }, percent: 0 }, 'loaded and watched even at 0 %')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ MODEL_CANARY_KEY: 'skin/canary/model.h5', MODEL_CANARY_PERCENT: '10' }, /MODEL_CANARY_KEY is a key in S3_BUCKET, which is not set/],
    [{ ...s3, MODEL_CANARY_KEY: 'k', MODEL_CANARY_PATH: '/srv/canary' }, /set MODEL_CANARY_KEY or MODEL_CANARY_PATH, not both/],
    [{ ...s3, MODEL_CANARY_KEY: 'skin/live/model.onnx' }, /MODEL_CANARY_KEY is S3_MODEL_KEY itself/],
    [{ MODEL_CANARY_PERCENT: '10' }, /MODEL_CANARY_PERCENT is 10 but neither MODEL_CANARY_KEY nor MODEL_CANARY_PATH is set/],
    [{ MODEL_CANARY_PATH: '/srv/canary', MODEL_CANARY_PERCENT: '101' }, /MODEL_CANARY_PERCENT must be <= 100/],
    [{ MODEL_CANARY_PATH: '/srv/canary', MODEL_CANARY_PERCENT: 'half' }, /MODEL_CANARY_PERCENT must be number/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('the thread budget takes WORKERS, INTRA_OP_THREADS and the UV_THREADPOOL_SIZE the process started with', async (t) => {
  const c = loadConfig({ WORKERS: '3', INTRA_OP_THREADS: '2', UV_THREADPOOL_SIZE: '8', BACKGROUND_NICE: '0' }, 8)
  t.equal(c.workers, 3)
  t.equal(c.threads.backgroundNice, 0)
  t.equal(c.intraOpThreads, 2)
  t.equal(c.queueSize, 24, 'the queue follows the workers')
  t.match(c.threads, { cores: 8, workers: 3, intraOpThreads: 2, uvThreadpool: 8, warnings: [/= 6 threads of inference on 8 cores/] })
})
