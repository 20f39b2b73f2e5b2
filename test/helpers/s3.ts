// A real S3-protocol server (fauxqs, in memory) on an ephemeral loopback port, and a client for it.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { buildApp } from 'fauxqs'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { CACHE_SUBDIR, MARKER_FILE, checkEntry, readMarker } from '../../src/models/cache.js'
import { pushModel, type PushResult } from '../../src/models/publish.js'
import { SKIN_LABELS, TINY_SIZE } from './model.js'

// fauxqs accepts any credentials. Passing them explicitly keeps the SDK away from the
// default chain (shared config files, instance metadata) during tests.
export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' }

/** The environment a spawned server or CLI needs to talk to the fake without looking elsewhere. */
export function s3Env (endpoint: string): Record<string, string> {
  return {
    S3_ENDPOINT: endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true'
  }
}

export function testClient (endpoint: string): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS })
}

export interface FakeS3 {
  endpoint: string
  port: number
  client: S3Client
  createBucket: (name: string) => Promise<void>
  put: (bucket: string, key: string, body: Uint8Array | string) => Promise<void>
  close: () => Promise<void>
}

export async function startFakeS3 (): Promise<FakeS3> {
  const app = buildApp({ logger: false })
  // startFauxqs() would bind every interface; tests stay on loopback.
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('fauxqs did not bind a TCP port')
  const endpoint = `http://127.0.0.1:${address.port}`
  const client = testClient(endpoint)
  return {
    endpoint,
    port: address.port,
    client,
    async createBucket (name) {
      await client.send(new CreateBucketCommand({ Bucket: name }))
    },
    async put (bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
    },
    async close () {
      client.destroy()
      await app.close()
    }
  }
}

/** One fake per test file is enough; it is torn down with the test. */
export async function fakeS3 (t: Test): Promise<FakeS3> {
  const s3 = await startFakeS3()
  t.teardown(s3.close)
  return s3
}

/**
 * Bytes the store serves as ONNX without parsing them: random, after the two bytes an ONNX
 * ModelProto starts with (ir_version 7). Anything else would be sent to the converter.
 */
export function fakeOnnx (bytes: number): Buffer {
  const body = randomBytes(bytes)
  body[0] = 0x08
  body[1] = 0x07
  return body
}

/** Manifest fields of a tiny NCHW test model (writeTinyBundle's), without version and sha256. */
export const TINY_MANIFEST = {
  name: 'tiny-test',
  format: 'onnx',
  file: 'model.onnx',
  input: { name: 'input', layout: 'NCHW', width: TINY_SIZE, height: TINY_SIZE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  output: { name: 'logits', activation: 'softmax' },
  labels: SKIN_LABELS
}

export interface PublishOptions {
  bucket: string
  prefix: string
  version: string
  /** The model file's bytes; random bytes by default (the store never parses the model). */
  model?: Uint8Array
  force?: boolean
}

/** Pushes one bundle version the way `shine-models push` does; the model file is written under `tmp`. */
export async function publish (s3: FakeS3, tmp: string, o: PublishOptions): Promise<PushResult & { model: Uint8Array }> {
  const model = o.model ?? fakeOnnx(256 * 1024)
  const dir = join(tmp, `push-${o.version}-${randomBytes(4).toString('hex')}`)
  await mkdir(dir, { recursive: true })
  const modelPath = join(dir, 'model.onnx')
  await writeFile(modelPath, model)
  const result = await pushModel({ client: s3.client, bucket: o.bucket, prefix: o.prefix, modelPath, manifest: TINY_MANIFEST, version: o.version, force: o.force })
  return { ...result, model }
}

/**
 * Everything in the S3 cache that is not a complete, verified version folder: partial downloads,
 * staging folders, folders without a marker, files whose hash changed. Empty when the cache is clean.
 */
export async function cacheProblems (modelDir: string): Promise<string[]> {
  const root = join(modelDir, CACHE_SUBDIR)
  const problems: string[] = []
  const list = async (dir: string) => await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const bucket of await list(root)) {
    if (!bucket.isDirectory()) { problems.push(`file ${bucket.name} in ${root}`); continue }
    for (const key of await list(join(root, bucket.name))) {
      const keyPath = join(root, bucket.name, key.name)
      if (!key.isDirectory()) { problems.push(`file ${keyPath}`); continue }
      for (const version of await list(keyPath)) {
        const dir = join(keyPath, version.name)
        if (!version.isDirectory()) { problems.push(`file ${dir}`); continue }
        const marker = await readMarker(dir)
        if (marker === undefined) { problems.push(`no marker in ${dir}`); continue }
        const problem = await checkEntry(dir, marker)
        if (problem !== undefined) problems.push(problem)
        const files = (await readdir(dir)).filter((f) => f !== MARKER_FILE)
        for (const f of files) if (!(f in marker.sha256)) problems.push(`unverified file ${join(dir, f)}`)
      }
    }
  }
  return problems
}

/** The committed version folders in the cache. */
export async function cachedVersions (modelDir: string): Promise<string[]> {
  const root = join(modelDir, CACHE_SUBDIR)
  const out: string[] = []
  for (const bucket of await readdir(root).catch(() => [])) {
    for (const key of await readdir(join(root, bucket))) {
      for (const version of await readdir(join(root, bucket, key))) out.push(join(bucket, key, version))
    }
  }
  return out.sort()
}

/** A fresh temp folder removed after the test (t.testdir() hands out one folder per test). */
export async function scratchDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shine-s3-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Writes one bundle version at a fixed folder (as a promotion does: the model, then the
 * manifest), so the serving key changes in place. The manifest pins the model's sha256.
 */
export async function putLive (s3: FakeS3, bucket: string, folder: string, version: string, model: Uint8Array, manifest: Record<string, unknown> = {}): Promise<void> {
  const sha256 = createHash('sha256').update(model).digest('hex')
  await s3.put(bucket, `${folder}/model.onnx`, model)
  await s3.put(bucket, `${folder}/manifest.json`, JSON.stringify({ ...TINY_MANIFEST, version, sha256: { 'model.onnx': sha256 }, ...manifest }))
}
