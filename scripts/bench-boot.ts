// Benchmark of issue 3: npm run bench:boot [-- --model padded|dense --mb 128 --runs 3]
// Boot time to /health 200 with a big model bundle from a loopback S3 server (fauxqs in a child
// process): cold (download) and warm (cache hit); and the download strategies compared
// (one stream vs parallel ranged GETs), on loopback and through a per-connection bandwidth cap.
// Figures go in the README. Not a test: it prints, it does not assert.
import { spawn, fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { downloadObject } from '../src/models/download.js'
import { pushModel } from '../src/models/publish.js'
import { createS3Client, headObject } from '../src/models/s3.js'
import { startFaultProxy } from '../test/helpers/fault-proxy.js'
import { TEST_CREDENTIALS, TINY_MANIFEST, s3Env, startFakeS3, testClient } from '../test/helpers/s3.js'
import { buildBigModel } from './bench-model.js'
import { buildTinyClassifier, tensor } from './onnx-builder.js'
import onnxProto from 'onnx-proto'

const BUCKET = 'bench'
const TARGET = { coldMs: 3000, warmMs: 1000 }

if (process.argv.includes('--fauxqs')) {
  // The S3 server runs in its own process, so it never competes with the measuring loop.
  const s3 = await startFakeS3()
  await s3.createBucket(BUCKET)
  process.send?.(s3.endpoint)
  await new Promise(() => {})
}

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: 'padded' },
    mb: { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    'skip-download': { type: 'boolean', default: false },
    // Prints the log of the last warm boot with times from spawn: where the second goes.
    timeline: { type: 'boolean', default: false }
  }
})
const root = fileURLToPath(new URL('..', import.meta.url))
const serverEntry = join(root, 'dist/server.js')
const bytes = Math.round(Number(flags.mb) * 1024 * 1024)
const runs = Number(flags.runs)

/**
 * 'padded': the tiny test classifier plus one unused initializer of the wanted size (ONNX Runtime
 * reads and parses it, then drops it). 'dense': a weight matrix that every inference uses, so it
 * is loaded and packed like a real model's weights.
 */
function buildModel (kind: string): Uint8Array {
  if (kind === 'dense') return buildBigModel({ bytes, classes: 8, size: 32, seed: 7 })
  const { onnx } = onnxProto
  const model = onnx.ModelProto.decode(buildTinyClassifier({ seed: 7, classes: 8, size: 32, layout: 'NCHW' }))
  const padding = new Float32Array(Math.floor(bytes / 4))
  for (let i = 0; i < padding.length; i++) padding[i] = (i % 977) / 977
  model.graph?.initializer?.push(tensor('padding', [padding.length], padding))
  return new Uint8Array(onnx.ModelProto.encode(model).finish())
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ')

async function startFauxqs (): Promise<{ endpoint: string, child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--fauxqs'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const [endpoint] = await once(child, 'message') as [string]
  return { endpoint, child }
}

interface Boot { readyMs: number, listenMs: number, health: Record<string, unknown>, timeline: string[] }

/** Spawns `node dist/server.js` and times it from spawn to the first /health 200. */
async function boot (env: Record<string, string>): Promise<Boot> {
  const started = performance.now()
  const spawnedAt = Date.now()
  const child = spawn(process.execPath, [serverEntry], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: '0', WORKERS: '2', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  try {
    let url: string | undefined
    let listenMs = 0
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited:\n${output}`)
      if (performance.now() - started > 120_000) throw new Error(`not ready after 120 s:\n${output.slice(-2000)}`)
      if (url === undefined) {
        url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
        if (url !== undefined) listenMs = performance.now() - started
      }
      if (url !== undefined) {
        const res = await fetch(`${url}/health`).catch(() => undefined)
        if (res?.status === 200) {
          const readyMs = performance.now() - started
          const timeline = output.split('\n').flatMap((line) => {
            try {
              const { time, msg } = JSON.parse(line) as { time: number, msg: string }
              return [`${String(time - spawnedAt).padStart(6)} ms  ${msg}`]
            } catch {
              return []
            }
          })
          return { readyMs, listenMs, health: await res.json() as Record<string, unknown>, timeline: [...timeline, `${readyMs.toFixed(0).padStart(6)} ms  /health 200`] }
        }
        await res?.body?.cancel()
      }
      await sleep(5)
    }
  } finally {
    child.kill('SIGTERM')
    if (child.exitCode === null) await once(child, 'exit')
  }
}

// The server's own client settings (timeouts, no SDK retries, no CRC pass), test credentials.
const clientFor = (endpoint: string) => createS3Client({
  region: 'us-east-1', endpoint, forcePathStyle: true, connectTimeoutMs: 5000, stallTimeoutMs: 20_000, credentials: TEST_CREDENTIALS
})

async function compareDownloads (endpoint: string, key: string): Promise<void> {
  const client = clientFor(endpoint)
  const object = await headObject(client, BUCKET, key)
  const dir = await mkdtemp(join(os.tmpdir(), 'bench-dl-'))
  const retry = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000 }
  const MiB = 1024 * 1024
  const measure = async (c: typeof client, streams: number, partMiB: number, rounds: number) => {
    const times: number[] = []
    for (let i = 0; i < rounds; i++) {
      const dest = join(dir, `dl-${streams}-${i}`)
      const t = performance.now()
      await downloadObject({ client: c, bucket: BUCKET, object, dest, streams, partSize: partMiB * MiB, retry })
      times.push(performance.now() - t)
      await rm(dest)
    }
    return median(times)
  }
  const line = (where: string, streams: number, partMiB: number, ms: number) => {
    const how = streams === 1 ? 'one stream' : `${streams} ranged GETs of ${partMiB} MiB`
    console.log(`  ${where.padEnd(26)} ${how.padEnd(26)} ${fmt(ms)}  ${(object.size / 1e6 / (ms / 1000)).toFixed(0).padStart(4)} MB/s`)
  }
  console.log('\nDownload of the model file (streamed to disk, sha256 on the fly, fsync), median:')
  for (const [streams, partMiB] of [[1, 16], [2, 16], [4, 8], [4, 16], [8, 8], [8, 16]] as const) {
    line('loopback', streams, partMiB, await measure(client, streams, partMiB, runs))
  }
  // S3 serves one connection at roughly 50-100 MB/s; the cap stands in for that.
  const proxy = await startFaultProxy(endpoint)
  proxy.throttle(64 * MiB)
  const capped = clientFor(proxy.endpoint)
  for (const [streams, partMiB] of [[1, 16], [4, 16], [8, 16]] as const) {
    line('64 MiB/s per connection', streams, partMiB, await measure(capped, streams, partMiB, 1))
  }
  capped.destroy()
  client.destroy()
  await proxy.close()
  await rm(dir, { recursive: true, force: true })
}

console.log(`bench:boot — ${flags.model} model of ${flags.mb} MiB, ${runs} runs; ${os.cpus()[0]?.model ?? '?'} × ${os.availableParallelism()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${load()}`)
const work = await mkdtemp(join(os.tmpdir(), 'bench-boot-'))
const fauxqs = await startFauxqs()
try {
  let t = performance.now()
  const modelBytes = buildModel(flags.model)
  const bundleDir = join(work, 'bundle')
  await mkdir(bundleDir)
  await writeFile(join(bundleDir, 'model.onnx'), modelBytes)
  console.log(`built the model: ${(modelBytes.length / 1e6).toFixed(1)} MB in ${fmt(performance.now() - t)}`)
  t = performance.now()
  const seed = testClient(fauxqs.endpoint)
  const pushed = await pushModel({ client: seed, bucket: BUCKET, prefix: 'bench', modelPath: join(bundleDir, 'model.onnx'), manifest: { ...TINY_MANIFEST, name: `bench-${flags.model}` }, version: 'v1' })
  seed.destroy()
  console.log(`pushed s3://${BUCKET}/${pushed.modelKey} with lib-storage in ${fmt(performance.now() - t)}`)

  if (flags['skip-download'] !== true) await compareDownloads(fauxqs.endpoint, pushed.modelKey)

  const env = {
    ...s3Env(fauxqs.endpoint),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    S3_BUCKET: BUCKET,
    S3_MODEL_KEY: pushed.modelKey
  }
  const cold: Boot[] = []
  const warm: Boot[] = []
  let modelDir = ''
  for (let i = 0; i < runs; i++) {
    modelDir = join(work, `models-${i}`)
    cold.push(await boot({ ...env, MODEL_DIR: modelDir }))
  }
  for (let i = 0; i < runs; i++) warm.push(await boot({ ...env, MODEL_DIR: modelDir }))

  console.log('\nBoot to /health 200 (spawn → 200; `node dist/server.js`, WORKERS=2):')
  const row = (name: string, boots: Boot[], target: number) => {
    const ready = median(boots.map((b) => b.readyMs))
    console.log(`  ${name}: median ${fmt(ready)} (runs: ${boots.map((b) => fmt(b.readyMs)).join(', ')}; listening after ${fmt(median(boots.map((b) => b.listenMs)))})  target ≤ ${fmt(target)}: ${ready <= target ? 'met' : 'MISSED'}`)
  }
  row('cold (download)', cold, TARGET.coldMs)
  const store = cold.map((b) => (b.health.store as { lastDownload?: { durationMs: number, mbPerS: number } }).lastDownload)
  console.log(`    download inside the cold boots: ${store.map((d) => `${d?.durationMs ?? '?'} ms at ${d?.mbPerS ?? '?'} MB/s`).join(', ')}`)
  row('warm (cache hit)', warm, TARGET.warmMs)
  if (flags.timeline) console.log(`  last warm boot, server log:\n    ${warm.at(-1)?.timeline.join('\n    ')}`)
  console.log(`    sources: cold ${cold.map((b) => (b.health.model as { source: string }).source).join('/')}, warm ${warm.map((b) => (b.health.model as { source: string }).source).join('/')}; load average now ${load()}`)
} finally {
  fauxqs.child.kill()
  await rm(work, { recursive: true, force: true })
}
