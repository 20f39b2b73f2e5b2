// Promotion (README "Updating and rolling back a fleet"): a pushed version folder
// <prefix>/<version>/ is copied over the serving folder that servers' S3_MODEL_KEY names, the
// model before the manifest; every server picks it up within MODEL_POLL_S. The serving folder
// keeps its promotion history, so a rollback knows what came before.
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { MANIFEST_FILE } from './bundle.js'
import { parseManifest, type ModelSpec } from './manifest.js'
import { describeS3Error } from './s3.js'

/** Written beside the serving model; never a file a server reads. */
export const HISTORY_FILE = 'promotions.json'

/** A version that cannot be promoted (missing, does not verify, does not fit the key): exit 3. */
export class PromoteRefusedError extends Error {
  override name = 'PromoteRefusedError'
}

export interface Promotion {
  version: string
  /** The folder it was copied from. */
  from: string
  at: string
}

export interface PromoteTarget {
  client: S3Client
  bucket: string
  /** The serving model key (S3_MODEL_KEY), e.g. skin/hare/live/model.onnx. */
  servingKey: string
  /** Where versions are pushed; default: the folder above the serving folder (skin/hare). */
  prefix?: string
}

const folderOf = (key: string) => posix.dirname(key)
const join = (folder: string, file: string) => (folder === '.' ? file : `${folder}/${file}`)
const prefixOf = (t: PromoteTarget) => t.prefix?.replace(/^\/+|\/+$/g, '') ?? posix.dirname(folderOf(t.servingKey))

/** An object's body, or undefined when S3 says 404. */
async function getBody (client: S3Client, bucket: string, key: string): Promise<GetObjectCommandOutput['Body'] | undefined> {
  try {
    return (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body
  } catch (err) {
    if (describeS3Error(err).status === 404) return undefined
    throw err
  }
}

async function getText (client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  return await (await getBody(client, bucket, key))?.transformToString()
}

/** Streamed, never stored: promoting a 128 MB model costs no disk. */
async function sha256Of (client: S3Client, bucket: string, key: string): Promise<string> {
  const body = await getBody(client, bucket, key)
  if (body === undefined) return 'missing'
  const hash = createHash('sha256')
  for await (const chunk of body as Readable) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export async function readHistory (t: PromoteTarget): Promise<Promotion[]> {
  const text = await getText(t.client, t.bucket, join(folderOf(t.servingKey), HISTORY_FILE))
  if (text === undefined) return []
  try {
    const parsed = JSON.parse(text) as unknown
    return Array.isArray(parsed) ? parsed as Promotion[] : []
  } catch {
    return []
  }
}

/** The pushed version's manifest, refused unless every file it pins re-hashes in S3. */
async function verifiedVersion (t: PromoteTarget, version: string): Promise<{ folder: string, spec: ModelSpec }> {
  const folder = join(prefixOf(t), version)
  const text = await getText(t.client, t.bucket, join(folder, MANIFEST_FILE))
  if (text === undefined) throw new PromoteRefusedError(`no version ${version}: s3://${t.bucket}/${join(folder, MANIFEST_FILE)} does not exist`)
  const spec = parseManifest(text)
  if (spec.file !== posix.basename(t.servingKey)) {
    throw new PromoteRefusedError(`version ${version}'s model is "${spec.file}", but the serving key names "${posix.basename(t.servingKey)}"`)
  }
  for (const [file, expected] of Object.entries(spec.sha256)) {
    const actual = await sha256Of(t.client, t.bucket, join(folder, file))
    if (actual !== expected.toLowerCase()) {
      throw new PromoteRefusedError(`version ${version} does not verify: ${file} is ${actual === 'missing' ? 'missing' : `sha256 ${actual}`}, its manifest pins ${expected}`)
    }
  }
  return { folder, spec }
}

/**
 * Copies a verified version over the serving folder: its files, then the manifest last (a server
 * polling in between sees a pair that does not verify and refuses it; the next poll takes the
 * whole version), then the history.
 */
export async function promote (t: PromoteTarget, version: string, history?: Promotion[]): Promise<{ spec: ModelSpec, history: Promotion[] }> {
  const { folder, spec } = await verifiedVersion(t, version)
  const serving = folderOf(t.servingKey)
  const files = Object.keys(spec.sha256).filter((f) => f !== MANIFEST_FILE)
  const copy = async (file: string) => await t.client.send(new CopyObjectCommand({
    Bucket: t.bucket, Key: join(serving, file), CopySource: encodeURI(`${t.bucket}/${join(folder, file)}`)
  }))
  for (const file of [spec.file, ...files.filter((f) => f !== spec.file)]) await copy(file)
  await copy(MANIFEST_FILE)
  const next = [...(history ?? await readHistory(t)), { version, from: folder, at: new Date().toISOString() }]
  await t.client.send(new PutObjectCommand({ Bucket: t.bucket, Key: join(serving, HISTORY_FILE), Body: `${JSON.stringify(next, null, 2)}\n`, ContentType: 'application/json' }))
  return { spec, history: next }
}

/** Promotes the version promoted before the current one, and forgets the current one. */
export async function rollback (t: PromoteTarget): Promise<{ spec: ModelSpec, history: Promotion[], from: string }> {
  const history = await readHistory(t)
  const current = history.at(-1)
  const previous = history.at(-2)
  if (current === undefined || previous === undefined) {
    throw new PromoteRefusedError(`nothing to roll back to: s3://${t.bucket}/${join(folderOf(t.servingKey), HISTORY_FILE)} records ${history.length} promotion(s)`)
  }
  const done = await promote(t, previous.version, history.slice(0, -2))
  return { ...done, from: current.version }
}

export interface ServingStatus {
  key: string
  /** The serving manifest's version, or why it cannot be read. */
  version: string | undefined
  problem?: string
  history: Promotion[]
}

export async function servingStatus (t: PromoteTarget): Promise<ServingStatus> {
  const history = await readHistory(t)
  const text = await getText(t.client, t.bucket, join(folderOf(t.servingKey), MANIFEST_FILE))
  if (text === undefined) return { key: t.servingKey, version: undefined, problem: 'no manifest.json beside the serving key', history }
  try {
    return { key: t.servingKey, version: parseManifest(text).version, history }
  } catch (err) {
    return { key: t.servingKey, version: undefined, problem: (err as Error).message, history }
  }
}
