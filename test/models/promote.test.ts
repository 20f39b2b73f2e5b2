// Promotion and rollback against a real S3-protocol server (fauxqs on loopback).
import { PutObjectCommand } from '@aws-sdk/client-s3'
import t, { type Test } from 'tap'
import { HISTORY_FILE, promote, readHistory, rollback, servingStatus, type PromoteTarget } from '../../src/models/promote.js'
import { fakeOnnx, fakeS3, publish, scratchDir, testClient } from '../helpers/s3.js'

async function setup (t: Test) {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const tmp = await scratchDir(t)
  for (const version of ['v1', 'v2']) await publish(s3, tmp, { bucket: 'models', prefix: 'skin/tiny', version })
  const target: PromoteTarget = { client: s3.client, bucket: 'models', servingKey: 'skin/tiny/live/model.onnx' }
  return { s3, tmp, target }
}

t.test('promote copies a verified version over the serving key and records it; rollback goes back one', async (t) => {
  const { s3, target } = await setup(t)
  t.match(await servingStatus(target), { version: undefined, problem: /no manifest/, history: [] })
  await t.rejects(rollback(target), { name: 'PromoteRefusedError', message: /nothing to roll back to: .* records 0 promotion/ })

  t.match(await promote(target, 'v1'), { spec: { version: 'v1' }, history: [{ version: 'v1', from: 'skin/tiny/v1' }] })
  t.match(await servingStatus(target), { version: 'v1', history: [{ version: 'v1' }] })
  await t.rejects(rollback(target), { message: /records 1 promotion/ })
  await promote(target, 'v2')
  t.same((await readHistory(target)).map((p) => p.version), ['v1', 'v2'])

  const back = await rollback(target)
  t.match(back, { from: 'v2', spec: { version: 'v1' } })
  t.same((await readHistory(target)).map((p) => p.version), ['v1'], 'the rolled-back version is dropped from the history')
  t.match(await servingStatus(target), { version: 'v1' })

  // A history that is not ours reads as empty rather than failing a promotion.
  await s3.put('models', `skin/tiny/live/${HISTORY_FILE}`, '{broken')
  t.same(await readHistory(target), [])
  await s3.put('models', `skin/tiny/live/${HISTORY_FILE}`, '{"not":"a list"}')
  t.same(await readHistory(target), [])
  await s3.put('models', 'skin/tiny/live/manifest.json', '{"name":1}')
  t.match(await servingStatus(target), { version: undefined, problem: /./ })
})

t.test('a version that is missing, does not verify, or names another file is refused before any copy', async (t) => {
  const { s3, tmp, target } = await setup(t)
  await t.rejects(promote(target, 'v9'), { name: 'PromoteRefusedError', message: /no version v9: s3:\/\/models\/skin\/tiny\/v9\/manifest\.json does not exist/ })
  await s3.put('models', 'skin/tiny/v2/model.onnx', fakeOnnx(1000))
  await t.rejects(promote(target, 'v2'), { name: 'PromoteRefusedError', message: /version v2 does not verify: model\.onnx is sha256 [0-9a-f]{64}, its manifest pins/ })
  await s3.client.send(new PutObjectCommand({ Bucket: 'models', Key: 'skin/tiny/v3/manifest.json', Body: JSON.stringify({ ...JSON.parse('{}'), name: 'x', version: 'v3', format: 'onnx', file: 'model.onnx', sha256: { 'model.onnx': 'a'.repeat(64) }, input: { name: 'input', layout: 'NCHW', width: 32, height: 32, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'logits', activation: 'softmax' }, labels: ['a', 'b'] }) }))
  await t.rejects(promote(target, 'v3'), { message: /model\.onnx is missing/ })
  await t.rejects(promote({ ...target, servingKey: 'skin/tiny/live/other.onnx' }, 'v1'), { message: /version v1's model is "model\.onnx", but the serving key names "other\.onnx"/ })
  t.equal((await servingStatus(target)).version, undefined, 'nothing was copied')
  await publish(s3, tmp, { bucket: 'models', prefix: 'elsewhere', version: 'v5' })
  t.match(await promote({ ...target, prefix: '/elsewhere/' }, 'v5'), { spec: { version: 'v5' } }, 'an explicit --prefix')
  await publish(s3, tmp, { bucket: 'models', prefix: '', version: 'v6' })
  const atRoot = { ...target, servingKey: 'model.onnx' }
  t.match(await promote(atRoot, 'v6'), { history: [{ from: 'v6' }] }, 'a serving key at the bucket root, versions beside it')
  t.match(await servingStatus(atRoot), { version: 'v6' })
})

t.test('S3 failures other than 404 are passed on, not taken for a missing file', async (t) => {
  // A port nothing listens on: the connection is refused.
  const { createServer } = await import('node:net')
  const probe = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => probe.once('listening', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  const client = testClient(`http://127.0.0.1:${port}`)
  t.teardown(() => client.destroy())
  await t.rejects(promote({ client, bucket: 'models', servingKey: 'skin/tiny/live/model.onnx' }, 'v1'), { code: 'ECONNREFUSED' })
})
