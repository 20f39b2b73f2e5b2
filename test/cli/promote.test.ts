// shine-models promote / rollback / status through the built CLI, seen by a running built server.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildTinyClassifier } from '../../scripts/onnx-builder.js'
import { runCli } from '../helpers/cli.js'
import { SKIN_LABELS, TINY_SIZE } from '../helpers/model.js'
import { fakeOnnx, fakeS3, publish, s3Env, scratchDir } from '../helpers/s3.js'
import { spawnServer, waitReady } from '../helpers/spawn-server.js'

const cli = runCli

async function servedVersion (url: string, want: string): Promise<string> {
  let version = ''
  for (let i = 0; i < 1500 && version !== want; i++) {
    version = ((await (await fetch(`${url}/health`)).json()) as { model: { version: string } }).model.version
    if (version !== want) await sleep(20)
  }
  return version
}

t.test('promote, a refused promote, rollback and status, picked up by a running server', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const tmp = await scratchDir(t)
  const model = (seed: number) => buildTinyClassifier({ seed, classes: SKIN_LABELS.length, size: TINY_SIZE, layout: 'NCHW' })
  await publish(s3, tmp, { bucket: 'models', prefix: 'skin/tiny', version: 'v1', model: model(1) })
  await publish(s3, tmp, { bucket: 'models', prefix: 'skin/tiny', version: 'v2', model: model(2) })
  await publish(s3, tmp, { bucket: 'models', prefix: 'skin/tiny', version: 'v3', model: model(3) })
  // v3's model replaced after it was pushed: its manifest no longer matches.
  await s3.put('models', 'skin/tiny/v3/model.onnx', fakeOnnx(4096))
  const env = { ...s3Env(s3.endpoint), S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/tiny/live/model.onnx' }

  t.match(await cli(['promote', '--version', 'v1'], env), { code: 0, stdout: /^promoted tiny-test v1 to s3:\/\/models\/skin\/tiny\/live\/model\.onnx \(verified; 1 promotion\(s\) recorded\)/ })
  const server = await spawnServer(t, { ...env, MODEL_DIR: await scratchDir(t), MODEL_POLL_S: '0.2', MODEL_SWAP: 'live' })
  await waitReady(server.url)
  t.equal(await servedVersion(server.url, 'v1'), 'v1')

  t.match(await cli(['promote', '--version', 'v2'], env), { code: 0 })
  t.equal(await servedVersion(server.url, 'v2'), 'v2', 'the server picked the promotion up on its own')

  const refused = await cli(['promote', '--version', 'v3'], env)
  t.match(refused, { code: 3, stderr: /^shine-models promote: version v3 does not verify: model\.onnx is sha256 / })
  t.match(await cli(['promote'], env), { code: 2, stderr: 'shine-models promote: --version is required\n' })
  t.match(await cli(['status'], env), { code: 0, stdout: /^s3:\/\/models\/skin\/tiny\/live\/model\.onnx\tv2\n  promoted v1 from skin\/tiny\/v1 at .*\n  promoted v2 from skin\/tiny\/v2 at / })

  t.match(await cli(['rollback'], env), { code: 0, stdout: /^rolled back s3:\/\/models\/skin\/tiny\/live\/model\.onnx from v2 to v1;/ })
  t.equal(await servedVersion(server.url, 'v1'), 'v1', 'and the rollback')
  t.match(await cli(['rollback'], env), { code: 3, stderr: /nothing to roll back to/ })
  t.match(await cli(['status', '--key', 'skin/none/live/model.onnx'], env), { code: 1, stdout: /\t\? \(no manifest.json beside the serving key\)/ })
  t.match(await cli(['status', '--endpoint', 'http://127.0.0.1:9'], env), { code: 1, stderr: /^shine-models status: EndpointUnreachable: / })
  t.match(await cli(['promote', '--help'], env), { code: 0, stdout: /^usage: shine-models promote --version V/ })
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})
