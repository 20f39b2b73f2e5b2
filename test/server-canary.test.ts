// The canary share on the built server (`node dist/server.js`): a second model under its own S3
// key (or a local path) answers a sticky share of the clients, by X-Client-Id, else by address,
// is watched and swapped like the primary, and never holds up readiness.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildTinyClassifier } from '../scripts/onnx-builder.js'
import { inCanary } from '../src/inference/canary.js'
import { jpeg } from './fixtures/images.js'
import { SKIN_LABELS, TINY_SIZE, writeTinyBundle } from './helpers/model.js'
import { cachedVersions, fakeS3, putLive, s3Env, scratchDir } from './helpers/s3.js'
import { healthOf, spawnServer, until, waitReady, type SpawnedServer } from './helpers/spawn-server.js'

interface Health {
  status: string
  model: { version: string }
  canary?: { percent: number, model?: { version: string }, pending?: { version: string, error?: string } }
}

const tiny = (seed: number) => buildTinyClassifier({ seed, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW' })
// 1 000+ analyses from one address: the per-IP limit is not what this test is about.
const UNLIMITED = { RATE_LIMIT_MAX: '0', MODEL_POLL_S: '0', MODEL_SWAP: 'live' }

const health = async (url: string) => await healthOf<Health>(url)

/** The version that answered one upload from `clientId` (none: no X-Client-Id header). */
async function versionFor (url: string, photo: Buffer, clientId?: string): Promise<string> {
  const res = await fetch(`${url}/api/v2/analyze/guest`, {
    method: 'POST', body: photo, headers: { 'content-type': 'image/jpeg', ...(clientId === undefined ? {} : { 'x-client-id': clientId }) }
  })
  const body = await res.json() as { model?: { version: string } }
  if (res.status !== 200) throw new Error(`${res.status}: ${JSON.stringify(body)}`)
  return body.model!.version
}

/** Every client's answer, 8 uploads in flight at a time. */
async function answers (url: string, photo: Buffer, clients: string[]): Promise<Map<string, string>> {
  const got = new Map<string, string>()
  for (let i = 0; i < clients.length; i += 8) {
    const batch = clients.slice(i, i + 8)
    const versions = await Promise.all(batch.map(async (c) => await versionFor(url, photo, c)))
    batch.forEach((c, j) => got.set(c, versions[j]!))
  }
  return got
}

const sample = (text: string, name: string, labels: string) =>
  Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)

async function stopped (t: Test, server: SpawnedServer): Promise<void> {
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
}

t.test('30 % of 1 000 clients get the canary, each client always the same model; it swaps on its own', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  await putLive(s3, 'models', 'skin/live', 'v1', tiny(1))
  await putLive(s3, 'models', 'skin/canary', 'c1', tiny(2))
  const modelDir = await scratchDir(t)
  const server = await spawnServer(t, {
    ...s3Env(s3.endpoint), ...UNLIMITED, S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/live/model.onnx', MODEL_DIR: modelDir,
    MODEL_CANARY_KEY: 'skin/canary/model.onnx', MODEL_CANARY_PERCENT: '30', MODEL_CACHE_KEEP: '1'
  })
  await waitReady(server.url)
  await until('the canary loaded', async () => (await health(server.url)).canary?.model?.version === 'c1')
  t.match(await health(server.url), { status: 'ok', model: { version: 'v1' }, canary: { percent: 30, model: { version: 'c1', source: 's3' } } })

  const photo = await jpeg({ width: 96, height: 72, seed: 3 })
  const clients = Array.from({ length: 1000 }, (_, i) => `user-${i}`)
  const first = await answers(server.url, photo, clients)
  const share = [...first.values()].filter((v) => v === 'c1').length / 10
  t.ok(Math.abs(share - 30) <= 3, `canary share ${share} % of 1 000 clients (target 30 ± 3)`)
  t.same([...new Set(first.values())].sort(), ['c1', 'v1'], 'only the two versions answer')
  t.same(clients.filter((c) => (first.get(c) === 'c1') !== inCanary(`id:${c}`, 30)), [], 'the clients the hash puts in the share, and only those')
  const again = await answers(server.url, photo, clients.slice(0, 200))
  t.same(clients.slice(0, 200).filter((c) => again.get(c) !== first.get(c)), [], 'sticky: the same client gets the same model again')
  const byAddress: string[] = []
  for (let i = 0; i < 20; i++) byAddress.push(await versionFor(server.url, photo))
  t.equal(new Set(byAddress).size, 1, 'without X-Client-Id one address keeps one model')

  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  const answered = (version: string) => sample(metrics, 'http_requests_total', `method="POST",route="/api/v2/analyze/guest",status="200",version="${version}"`)
  t.equal(answered('v1') + answered('c1'), 1220, 'every analysis is counted under the version that answered')
  t.equal(answered('c1'), [...first.values(), ...again.values(), ...byAddress].filter((v) => v === 'c1').length)
  t.equal(sample(metrics, 'shine_inference_seconds_count', 'version="c1"'), answered('c1'), 'inference time is labelled by version too')
  t.equal(sample(metrics, 'shine_model_info', 'slot="canary",name="tiny-test",version="c1",source="s3"'), 1)
  t.equal(sample(metrics, 'shine_model_info', 'slot="primary",name="tiny-test",version="v1",source="s3"'), 1)
  t.match(metrics, /^shine_canary_percent 30$/m)
  t.match(metrics, /^shine_workers 4$/m, 'the pool gauges count both pools')

  // A new canary version is swapped like the primary's; the primary stays.
  await putLive(s3, 'models', 'skin/canary', 'c2', tiny(3))
  server.child.kill('SIGHUP')
  await until('c2 in the canary slot', async () => (await health(server.url)).canary?.model?.version === 'c2')
  t.equal((await health(server.url)).model.version, 'v1')
  t.equal((await cachedVersions(modelDir)).filter((v) => v.includes('live')).length, 1, 'the canary\'s swap left the primary\'s serving version in the cache')
  const inShare = clients.find((c) => first.get(c) === 'c1')!
  t.equal(await versionFor(server.url, photo, inShare), 'c2', 'the canary\'s clients now get its new version')
  t.match(await (await fetch(`${server.url}/metrics`)).text(), /^shine_model_swaps_total\{result="ok",slot="canary"\} 1$/m)

  // The primary swaps too. MODEL_CACHE_KEEP=1 counts across the cache, but each store prunes its own key folder only.
  await putLive(s3, 'models', 'skin/live', 'v2', tiny(4))
  server.child.kill('SIGHUP')
  await until('v2 as the primary', async () => (await health(server.url)).model.version === 'v2')
  // (Pruning runs when a store resolves, with the serving and the new version both in use.)
  t.ok((await cachedVersions(modelDir)).some((v) => v.includes('canary')), 'the primary\'s swap left the canary\'s versions in the cache')
  t.equal(await versionFor(server.url, photo, inShare), 'c2', 'the canary still serves from its cached version')
  await stopped(t, server)
})

t.test('a canary that is missing leaves every analysis to the primary, /health says why, and it loads once it appears', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  await putLive(s3, 'models', 'skin/live', 'v1', tiny(1))
  const server = await spawnServer(t, {
    ...s3Env(s3.endpoint), ...UNLIMITED, S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/live/model.onnx', MODEL_DIR: await scratchDir(t),
    MODEL_CANARY_KEY: 'skin/canary/model.onnx', MODEL_CANARY_PERCENT: '100'
  })
  await waitReady(server.url)
  await until('the canary\'s error', async () => (await health(server.url)).canary?.pending?.error !== undefined)
  t.match(await health(server.url), { status: 'ok', model: { version: 'v1' }, canary: { percent: 100, model: undefined, pending: { error: /skin\/canary\/model\.onnx/ } } })
  const photo = await jpeg({ width: 64, height: 48, seed: 4 })
  t.equal(await versionFor(server.url, photo, 'anyone'), 'v1', 'at 100 %, still the primary while the canary is empty')
  t.match(await (await fetch(`${server.url}/metrics`)).text(), /^shine_workers 2$/m, 'only the primary\'s pool exists')

  await putLive(s3, 'models', 'skin/canary', 'c1', tiny(2))
  server.child.kill('SIGHUP')
  await until('the canary loaded', async () => (await health(server.url)).canary?.model?.version === 'c1')
  t.equal((await health(server.url)).canary?.pending, undefined)
  t.equal(await versionFor(server.url, photo, 'anyone'), 'c1')
  t.equal(await versionFor(server.url, photo), 'c1', 'at 100 % the address-keyed client too')
  await stopped(t, server)
})

t.test('MODEL_CANARY_PATH: a local canary beside a local primary', async (t) => {
  const dir = t.testdir()
  const primary = await writeTinyBundle(join(dir, 'primary'), { seed: 1, version: 'local-1' })
  const canary = await writeTinyBundle(join(dir, 'canary'), { seed: 2, version: 'canary-1' })
  const server = await spawnServer(t, { ...UNLIMITED, MODEL_PATH: primary.dir, MODEL_DIR: join(dir, 'cache'), MODEL_CANARY_PATH: canary.dir, MODEL_CANARY_PERCENT: '50' })
  await waitReady(server.url)
  await until('the canary loaded', async () => (await health(server.url)).canary?.model?.version === 'canary-1')
  const photo = await jpeg({ width: 64, height: 48, seed: 5 })
  const clients = Array.from({ length: 40 }, (_, i) => `user-${i}`)
  const got = await answers(server.url, photo, clients)
  t.same(clients.filter((c) => got.get(c) !== (inCanary(`id:${c}`, 50) ? 'canary-1' : 'local-1')), [], 'each client on the side its hash gives')
  await stopped(t, server)
})
