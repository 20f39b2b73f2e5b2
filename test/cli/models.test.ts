// shine-models as users run it: the built CLI (`node dist/cli/models.js`), spawned, against fauxqs.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli.js'
import { writeTinyBundle } from '../helpers/model.js'
import { fakeS3, s3Env, scratchDir } from '../helpers/s3.js'

const run = runCli

t.test('help and usage errors', async (t) => {
  const [help, pushHelp, none, unknown, badFlag, noBucket, noPrefix, badEndpoint] = await Promise.all([
    run(['--help']), run(['push', '--help']), run([]), run(['deploy']), run(['list', '--wat']), run(['list']),
    run(['push', 'model.onnx', '--bucket', 'bkt']), run(['list', '--bucket', 'bkt', '--endpoint', 'ftp://x'])
  ])
  t.match(help, { code: 0, stdout: /usage: shine-models <command>[\s\S]*push[\s\S]*pull[\s\S]*list[\s\S]*verify/ })
  t.match(pushHelp, { code: 0, stdout: /^usage: shine-models push <model-file>[\s\S]*--dry-run[\s\S]*Exit codes: 0 ok, 1 failed, 2 usage/ })
  t.match(none, { code: 2, stderr: /^usage: shine-models/ })
  t.match(unknown, { code: 2, stderr: 'shine-models: unknown command "deploy" (push, pull, list, verify, convert, promote, rollback, status)\n' })
  t.match(badFlag, { code: 2, stderr: /^shine-models: Unknown option '--wat'.*\(see --help\)\n$/ })
  t.match(noBucket, { code: 2, stderr: 'shine-models list: --bucket is required (or set S3_BUCKET)\n' })
  t.match(noPrefix, { code: 2, stderr: 'shine-models push: --prefix is required\n' })
  t.match(badEndpoint, { code: 2, stderr: /^shine-models list: invalid configuration: env\/S3_ENDPOINT must match pattern/ })
})

t.test('push, list, pull, verify against a real S3-protocol server', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const env = s3Env(s3.endpoint)
  const bundle = await writeTinyBundle(await scratchDir(t), { version: '2026-01-01.1' })
  const modelDir = await scratchDir(t)

  const dry = await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny', '--dry-run'], env)
  t.match(dry, { code: 0, stdout: /^dry run: would upload s3:\/\/models\/skin\/tiny\/2026-01-01\.1\/model\.onnx \(/ })
  t.match(await run(['list', '--bucket', 'models'], env), { code: 0, stderr: 'no bundles under s3://models/\n' }, 'a dry run uploads nothing')

  const pushed = await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny'], env)
  t.equal(pushed.code, 0, pushed.stderr)
  t.match(pushed.stdout, /^pushed tiny-test 2026-01-01\.1 to s3:\/\/models\/skin\/tiny\/2026-01-01\.1\/model\.onnx \([\d.]+ MB, sha256 [0-9a-f]{64}\)\nS3_MODEL_KEY=skin\/tiny\/2026-01-01\.1\/model\.onnx\n$/)
  t.match(pushed.stderr, /uploading 100% /, 'progress on stderr')

  const again = await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny'], env)
  t.same(again, { code: 3, stdout: '', stderr: 'shine-models push: s3://models/skin/tiny/2026-01-01.1/ already holds version 2026-01-01.1; pass --force to overwrite it\n' })
  t.match(await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny', '--dry-run'], env), { code: 3, stdout: /push would refuse without --force/ })
  t.match(await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny', '--force'], env), { code: 0, stdout: /overwriting the previous upload/ })
  const v2 = await run(['push', bundle.modelPath, '--bucket', 'models', '--prefix', 'skin/tiny', '--version', 'v2', '--manifest', bundle.manifestPath], env)
  t.equal(v2.code, 0)

  const list = await run(['list', '--bucket', 'models', '--prefix', 'skin/tiny'], env)
  t.equal(list.code, 0)
  const rows = list.stdout.trim().split('\n').map((l) => l.split('\t'))
  t.same(rows[0], ['VERSION', 'SIZE', 'DATE', 'LABELS', 'S3_MODEL_KEY'])
  t.same(rows.slice(1).map((r) => [r[0], r[3], r[4]]), [['v2', '8', 'skin/tiny/v2/model.onnx'], ['2026-01-01.1', '8', 'skin/tiny/2026-01-01.1/model.onnx']])

  const pullEnv = { ...env, S3_BUCKET: 'models', S3_MODEL_KEY: 'skin/tiny/v2/model.onnx', MODEL_DIR: modelDir }
  const pulled = await run(['pull'], pullEnv)
  t.equal(pulled.code, 0, pulled.stderr)
  t.match(pulled.stdout, /^s3: .*\/model\.onnx \(version v2; downloaded [\d.]+ MB at [\d.]+ MB\/s\)\n$/)
  const modelFile = /^s3: (.*) \(version/.exec(pulled.stdout)![1]!
  t.same(await readFile(modelFile), await readFile(bundle.modelPath))
  t.match(await run(['pull'], pullEnv), { code: 0, stdout: /^cache: .* \(version v2; cache hit, nothing downloaded\)\n$/ })

  const verified = await run(['verify'], pullEnv)
  t.match(verified, { code: 0, stdout: /\tv2\tok, current in S3, matches S3\n$/ })
  await writeFile(modelFile, 'damaged')
  const damaged = await run(['verify'], pullEnv)
  t.match(damaged, { code: 1, stdout: /\t\?\tDAMAGED .*sha256 [0-9a-f]{64} does not match the verified/, stderr: 'damaged copies are never served; shine-models pull downloads the current version again\n' })
  t.match(await run(['pull'], pullEnv), { code: 0, stdout: /^s3: / }, 'pull replaces the damaged copy')

  const offline = await run(['pull', '--endpoint', 'http://127.0.0.1:9'], { ...pullEnv, S3_MAX_ATTEMPTS: '1' })
  t.match(offline, { code: 0, stdout: /^cache: /, stderr: /^warning: EndpointUnreachable: s3:\/\/models\/skin\/tiny\/v2\/model\.onnx: .*; kept the verified cached copy\n$/ })
})

t.test('failures are one line with exit code 1', async (t) => {
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const env = s3Env(s3.endpoint)
  const modelDir = await scratchDir(t)
  const bundle = await writeTinyBundle(await scratchDir(t))

  t.same(await run(['pull', '--bucket', 'models', '--key', 'no/such/model.onnx', '--model-dir', modelDir], env),
    { code: 1, stdout: '', stderr: 'shine-models pull: NoSuchKey: s3://models/no/such/model.onnx: no such key in the bucket (check S3_MODEL_KEY)\n' })
  t.same(await run(['pull', '--bucket', 'nobucket', '--key', 'a/model.onnx', '--model-dir', modelDir], env),
    { code: 1, stdout: '', stderr: 'shine-models pull: NoSuchBucket: s3://nobucket/a/model.onnx: the bucket does not exist (check S3_BUCKET)\n' })
  t.match(await run(['push', bundle.modelPath, '--bucket', 'nobucket', '--prefix', 'p'], env),
    { code: 1, stderr: /^shine-models push: NoSuchBucket: s3:\/\/nobucket\/p: the bucket does not exist \(check S3_BUCKET\)\n$/ })
  t.match(await run(['verify', '--bucket', 'models', '--key', 'no/such/model.onnx', '--model-dir', modelDir], env), { code: 1, stderr: /^error: NoSuchKey: / })

  const noCredentials = { ...env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', HOME: modelDir, AWS_CONFIG_FILE: join(modelDir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(modelDir, 'none') }
  delete (noCredentials as Record<string, string | undefined>).AWS_ACCESS_KEY_ID
  delete (noCredentials as Record<string, string | undefined>).AWS_SECRET_ACCESS_KEY
  t.match(await run(['pull', '--bucket', 'models', '--key', 'a/model.onnx', '--model-dir', modelDir], noCredentials),
    { code: 1, stderr: /^shine-models pull: NoCredentials: s3:\/\/models\/a\/model\.onnx: no AWS credentials found \(environment, shared config or instance role\) \(.*\)\n$/ })

  const badManifest = join(modelDir, 'bad.json')
  await writeFile(badManifest, JSON.stringify({ name: 'x', version: 'v1' }))
  const push = (...args: string[]) => run(['push', ...args, '--bucket', 'models', '--prefix', 'p'], env)
  const [missingFile, missingManifest, invalidManifest, badVersion] = await Promise.all([
    push(join(modelDir, 'missing.onnx')), push(bundle.modelPath, '--manifest', join(modelDir, 'none.json')),
    push(bundle.modelPath, '--manifest', badManifest), push(bundle.modelPath, '--version', 'a/b')
  ])
  t.match(missingFile, { code: 2, stderr: /is not a file/ })
  t.match(missingManifest, { code: 2, stderr: /cannot read the manifest .*none\.json/ })
  t.match(invalidManifest, { code: 2, stderr: /^shine-models push: manifest\.json is invalid: / })
  t.match(badVersion, { code: 2, stderr: /version "a\/b" must be/ })
})

t.test('convert: a Keras file → a servable ONNX bundle with the labels beside it; a refusal is exit 2 on one line', async (t) => {
  const { MINI_ENSEMBLE_H5, LAMBDA_H5, FACIAL_RESULTS, TEAM_LABELS } = await import('../helpers/keras.js')
  const { openBundle } = await import('../../src/models/bundle.js')
  const dir = await scratchDir(t)
  await writeFile(join(dir, 'best_facial_model.h5'), await readFile(MINI_ENSEMBLE_H5))
  await writeFile(join(dir, 'facial_results.json'), FACIAL_RESULTS)
  const out = join(dir, 'bundle')
  const done = await run(['convert', join(dir, 'best_facial_model.h5'), '--out', out, '--check'])
  t.equal(done.code, 0, done.stderr)
  t.match(done.stdout, /^converted .*best_facial_model\.h5 \(keras-h5, Keras 2\.13\.1, model "mini_ensemble"\) in \d+ ms\n/)
  t.match(done.stdout, /  input   input_layer \[N, 32, 32, 3\][\s\S]*  output  dense_2 \[N, 8\], activation none\n  labels  8 from facial_results\.json: healthy, acne, bags/)
  t.match(done.stdout, /  params  5,320\n  layers  Conv2D 22, [\s\S]*\ncheck: ran the ONNX graph on 2 seeded inputs .*all outputs finite/)
  const bundle = await openBundle(out)
  t.match(bundle.spec, { format: 'onnx', file: 'model.onnx', labels: TEAM_LABELS, input: { name: 'input_layer', layout: 'NHWC', width: 32, height: 32, channels: 'RGB' }, output: { activation: 'none' } })

  const refused = await run(['convert', LAMBDA_H5, '--out', join(dir, 'lambda')])
  t.match(refused, { code: 2, stdout: '', stderr: /^shine-models convert: layer "lambda" is a Lambda: it holds Python code[^\n]*\n$/ })
  t.notOk(existsSync(join(dir, 'lambda')), 'nothing written')
  t.match(await run(['convert', bundle.modelFile]), { code: 2, stderr: /is already an ONNX model/ })
  t.match(await run(['convert']), { code: 2, stderr: /convert takes exactly one model file/ })
})

t.test('push: a Keras file goes up unchanged with its side files; the manifest\'s format must match', async (t) => {
  const { SEQUENTIAL_H5 } = await import('../helpers/keras.js')
  const s3 = await fakeS3(t)
  await s3.createBucket('models')
  const env = s3Env(s3.endpoint)
  const dir = await scratchDir(t)
  await writeFile(join(dir, 'model.h5'), await readFile(SEQUENTIAL_H5))
  await writeFile(join(dir, 'facial_results.json'), JSON.stringify({ class_names: ['a', 'b', 'c', 'd'] }))
  const manifest = {
    name: 'seq', version: 'k1', file: 'model.h5', input: { name: 'image', layout: 'NHWC', width: 12, height: 12, mean: [0, 0, 0], std: [1, 1, 1] },
    output: { name: 'predictions', activation: 'none' }, labels: ['a', 'b', 'c', 'd']
  }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest))
  const pushed = await run(['push', join(dir, 'model.h5'), '--bucket', 'models', '--prefix', 'keras'], env)
  t.equal(pushed.code, 0, pushed.stderr)
  const { GetObjectCommand } = await import('@aws-sdk/client-s3')
  const remote = JSON.parse(await (await s3.client.send(new GetObjectCommand({ Bucket: 'models', Key: 'keras/k1/manifest.json' }))).Body!.transformToString())
  t.match(remote, { format: 'keras-h5', file: 'model.h5' })
  t.same(Object.keys(remote.sha256).sort(), ['facial_results.json', 'model.h5'])
  t.same(Buffer.from(await (await s3.client.send(new GetObjectCommand({ Bucket: 'models', Key: 'keras/k1/model.h5' }))).Body!.transformToByteArray()), await readFile(SEQUENTIAL_H5), 'unchanged')

  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, version: 'k2', format: 'onnx' }))
  t.match(await run(['push', join(dir, 'model.h5'), '--bucket', 'models', '--prefix', 'keras'], env),
    { code: 2, stderr: /^shine-models push: the manifest says format "onnx" but .*model\.h5 is a keras-h5 model\n$/ })
})
