#!/usr/bin/env node
// shine-models: publish, pull, list and verify model bundles in S3 (README "S3 model store"), and
// convert Keras/TF.js models to ONNX bundles (README "Keras models").
// Output: results on stdout, progress and errors on stderr, one line per error, exit codes below.
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { loadConfig, type Config } from '../config.js'
import { MANIFEST_FILE } from '../models/bundle.js'

const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const
// Exit code by error name; anything else is a failure (1). The S3 modules load lazily, so
// --help and usage errors answer without loading the AWS SDK.
const EXIT_BY_ERROR: Record<string, number> = {
  UsageError: EXIT.usage, ConfigError: EXIT.usage, PublishInputError: EXIT.usage, ManifestError: EXIT.usage, ConvertError: EXIT.usage, VersionExistsError: EXIT.refused,
  PromoteRefusedError: EXIT.refused
}

class UsageError extends Error {
  override name = 'UsageError'
}

const COMMON = `Common options:
  --bucket NAME      S3 bucket (default: S3_BUCKET)
  --region NAME      (default: S3_REGION, AWS_REGION, us-east-1)
  --endpoint URL     S3-compatible endpoint (default: S3_ENDPOINT)
  --path-style       path-style URLs, for MinIO and test servers (default: S3_FORCE_PATH_STYLE)
  -h, --help         this help
Credentials come from the AWS SDK's default chain. Exit codes: 0 ok, 1 failed, 2 usage or
invalid input, 3 refused (the version exists; --force overwrites it).`

const HELP: Record<string, string> = {
  main: `usage: shine-models <command> [options]

Commands:
  push <model-file>  publish a model version: <prefix>/<version>/<file> + manifest.json
  pull               download the configured model into MODEL_DIR, as the server does at boot
  list               list the model versions under a prefix
  verify             re-hash the cached copies against their manifests and against S3
  convert <model>    convert a Keras .h5/.keras or TF.js model.json to an ONNX bundle
  promote            copy a pushed version over the serving key (servers pick it up)
  rollback           promote the version that was served before the current one
  status             the version the serving key serves now, and its promotions

Run shine-models <command> --help for its options.`,
  push: `usage: shine-models push <model-file> --bucket NAME --prefix PATH [options]

Uploads the model (multipart) and then its manifest.json with the sha256 filled in, as
s3://<bucket>/<prefix>/<version>/<file>. Point a server's S3_MODEL_KEY at that key.
Keras (.h5, .keras) and TF.js (model.json) files are uploaded unchanged (the server converts
them), with their side files: a TF.js model's weight shards and facial_results.json,
labels.json or class_names.json. The manifest's "format" is filled in from the file's bytes.
  --prefix PATH      folder for the model's versions, e.g. skin/hare_run_v6 (required)
  --manifest FILE    manifest to publish (default: manifest.json beside the model file)
  --version V        version to publish (default: the manifest's "version")
  --force            overwrite the version if it exists
  --dry-run          check everything and print what would be uploaded; upload nothing

${COMMON}`,
  pull: `usage: shine-models pull [--bucket NAME] [--key KEY] [--model-dir DIR] [options]

Resolves the model exactly as the server does at boot: a verified cached copy of S3's current
version, or a verified download. Prints the local model file.
  --key KEY          model key (default: S3_MODEL_KEY)
  --model-dir DIR    local cache root (default: MODEL_DIR, ./models)

${COMMON}`,
  list: `usage: shine-models list --bucket NAME [--prefix PATH] [options]

Lists every bundle (a folder with manifest.json) under the prefix, newest first:
version, size, date, number of labels and the S3_MODEL_KEY to serve it.
  --prefix PATH      folder to list (default: the whole bucket)

${COMMON}`,
  convert: `usage: shine-models convert <model.h5|model.keras|model.json> [--out DIR] [--check]

Converts a Keras or TF.js layers model to ONNX, as the server does at boot, and writes a
servable bundle: DIR/model.onnx and DIR/manifest.json (labels from a manifest.json beside the
model, else facial_results.json / labels.json / class_names.json, else class_0…; input size
from the model; pixels RGB 0..1). Prints layers by type, parameters, shapes and the time taken.
  --out DIR          bundle folder (default: ./<model name>-onnx)
  --check            also run the converted graph on seeded inputs
Exit codes: 0 ok, 1 failed, 2 usage or a file that cannot be converted (the reason on one line).`,
  promote: `usage: shine-models promote --version V [--key KEY] [--prefix PATH] [options]

Makes a pushed version (<prefix>/<version>/) the one behind the serving key: every file its
manifest pins is re-hashed in S3 first (a version that does not verify is refused, exit 3),
then copied over the serving folder, the model before the manifest. Running servers pick it up
within MODEL_POLL_S (at once on SIGHUP). The serving folder records the promotion in
promotions.json, for rollback.
  --version V        the version to serve (required)
  --key KEY          the serving model key (default: S3_MODEL_KEY), e.g. skin/hare/live/model.onnx
  --prefix PATH      where versions are pushed (default: the folder above the serving folder)

${COMMON}`,
  rollback: `usage: shine-models rollback [--key KEY] [--prefix PATH] [options]

Promotes the version promoted before the current one (verified like promote) and drops the
current one from promotions.json. Refused (exit 3) when there is nothing to roll back to.
  --key KEY          the serving model key (default: S3_MODEL_KEY)
  --prefix PATH      where versions are pushed (default: the folder above the serving folder)

${COMMON}`,
  status: `usage: shine-models status [--key KEY] [options]

Prints the version the serving key holds now (its manifest) and its promotions, newest last.
  --key KEY          the serving model key (default: S3_MODEL_KEY)

${COMMON}`,
  verify: `usage: shine-models verify [--bucket NAME] [--key KEY] [--model-dir DIR] [options]

Re-hashes every cached version of the key against its manifest, and the current one against
S3's manifest. Exits 1 if a cached copy is damaged, S3 cannot be asked, or the current version
is not cached intact.
  --key KEY          model key (default: S3_MODEL_KEY)
  --model-dir DIR    local cache root (default: MODEL_DIR, ./models)

${COMMON}`
}

const OPTIONS = {
  bucket: { type: 'string' }, region: { type: 'string' }, endpoint: { type: 'string' }, 'path-style': { type: 'boolean' },
  prefix: { type: 'string' }, manifest: { type: 'string' }, version: { type: 'string' }, force: { type: 'boolean' },
  'dry-run': { type: 'boolean' }, key: { type: 'string' }, 'model-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  out: { type: 'string' }, check: { type: 'boolean' }
} satisfies ParseArgsConfig['options']

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS, allowPositionals: true }>>['values']

const out = (line: string) => { process.stdout.write(`${line}\n`) }
const err = (line: string) => { process.stderr.write(`${line}\n`) }
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/** A progress bar on a terminal; a line per 10 % otherwise (logs, CI). */
function progressBar (label: string): (done: number, total: number) => void {
  const started = performance.now()
  let lastStep = -1
  return (done, total) => {
    const fraction = total === 0 ? 1 : done / total
    const rate = done / 1e6 / Math.max((performance.now() - started) / 1000, 0.001)
    const text = `${label} ${Math.floor(fraction * 100)}% ${mb(done)} / ${mb(total)} ${rate.toFixed(0)} MB/s`
    if (process.stderr.isTTY) {
      const width = 30
      const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '-')
      process.stderr.write(`\r[${bar}] ${text}${fraction >= 1 ? '\n' : ''}`)
    } else if (Math.floor(fraction * 10) > lastStep) {
      lastStep = Math.floor(fraction * 10)
      err(text)
    }
  }
}

/** Flags override the environment; loadConfig validates both with the server's own rules. */
function configFor (flags: Flags, needKey: boolean): Config & { s3: NonNullable<Config['s3']> } {
  const env: NodeJS.ProcessEnv = { ...process.env }
  const set = (name: string, value: string | undefined) => { if (value !== undefined) env[name] = value }
  set('S3_BUCKET', flags.bucket)
  set('S3_MODEL_KEY', flags.key)
  set('S3_REGION', flags.region)
  set('S3_ENDPOINT', flags.endpoint)
  set('MODEL_DIR', flags['model-dir'])
  if (flags['path-style'] === true) env.S3_FORCE_PATH_STYLE = 'true'
  if (env.S3_BUCKET === undefined) throw new UsageError('--bucket is required (or set S3_BUCKET)')
  if (needKey && env.S3_MODEL_KEY === undefined) throw new UsageError('--key is required (or set S3_MODEL_KEY)')
  // push and list name no model key; a placeholder satisfies the server's "set together" rule.
  env.S3_MODEL_KEY ??= 'unused'
  return loadConfig(env) as Config & { s3: NonNullable<Config['s3']> }
}

async function push (flags: Flags, args: string[]): Promise<number> {
  const [modelPath, ...rest] = args
  if (modelPath === undefined || rest.length > 0) throw new UsageError('push takes exactly one model file')
  if (flags.prefix === undefined) throw new UsageError('--prefix is required')
  const config = configFor(flags, false)
  const { PublishInputError, VersionExistsError, pushModel } = await import('../models/publish.js')
  const { createS3Client, explainS3Error } = await import('../models/s3.js')
  const manifestPath = flags.manifest ?? join(dirname(modelPath), MANIFEST_FILE)
  if (!(await stat(modelPath).catch(() => undefined))?.isFile()) throw new PublishInputError(`${modelPath} is not a file`)
  let manifest: Record<string, unknown>
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>
  } catch (e) {
    throw new PublishInputError(`cannot read the manifest ${manifestPath} (${(e as Error).message.split('\n')[0]}); pass --manifest`)
  }
  const sideFiles = await keraSideFiles(modelPath, manifest)
  const client = createS3Client({ ...config.s3, ...config.modelStore })
  try {
    const result = await pushModel({
      client, bucket: config.s3.bucket, prefix: flags.prefix, modelPath, manifest, version: flags.version, sideFiles,
      force: flags.force, dryRun: flags['dry-run'], onProgress: progressBar('uploading')
    })
    const where = `s3://${config.s3.bucket}/${result.modelKey}`
    if (flags['dry-run'] === true) {
      out(`dry run: would upload ${where} (${mb(result.bytes)}, sha256 ${result.sha256}) and its manifest.json`)
      if (result.existed) out(`dry run: version ${result.version} exists; ${flags.force === true ? 'it would be overwritten (--force)' : 'push would refuse without --force'}`)
      return result.existed && flags.force !== true ? EXIT.refused : EXIT.ok
    }
    out(`pushed ${result.spec.name} ${result.version} to ${where} (${mb(result.bytes)}, sha256 ${result.sha256})${result.existed ? ', overwriting the previous upload' : ''}`)
    out(`S3_MODEL_KEY=${result.modelKey}`)
    return EXIT.ok
  } catch (e) {
    if (e instanceof PublishInputError || e instanceof VersionExistsError) throw e
    // Object HEADs answer 404 for a missing key, so a 404 that gets here is the bucket.
    throw explainS3Error(e, `s3://${config.s3.bucket}/${flags.prefix}`, 'bucket')
  } finally {
    client.destroy()
  }
}

/**
 * A Keras/TF.js model is published as it is: the manifest's format comes from the bytes (a
 * different one is refused), and its side files go with it.
 */
async function keraSideFiles (modelPath: string, manifest: Record<string, unknown>): Promise<string[]> {
  const { detectFormat } = await import('../convert/detect.js')
  const { PublishInputError } = await import('../models/publish.js')
  const format = await detectFormat(modelPath)
  if (manifest.format !== undefined && manifest.format !== format) {
    throw new PublishInputError(`the manifest says format "${String(manifest.format)}" but ${modelPath} is ${format === 'onnx' ? 'an ONNX model' : `a ${format} model`}`)
  }
  manifest.format = format
  if (format === 'onnx') return []
  const dir = dirname(modelPath)
  const present = async (f: string) => (await stat(join(dir, f)).catch(() => undefined))?.isFile() === true
  const { SIDE_LABEL_FILES } = await import('../models/labels.js')
  const files: string[] = []
  if (format === 'tfjs') {
    const { shardPaths } = await import('../convert/tfjs.js')
    const json = JSON.parse(await readFile(modelPath, 'utf8')) as { weightsManifest: unknown }
    files.push(...shardPaths(json.weightsManifest, modelPath))
  }
  for (const f of SIDE_LABEL_FILES) if (await present(f)) files.push(f)
  return [...new Set(files)].map((f) => join(dir, f))
}

async function convert (flags: Flags, args: string[]): Promise<number> {
  const [modelPath, ...rest] = args
  if (modelPath === undefined || rest.length > 0) throw new UsageError('convert takes exactly one model file')
  const { convertCommand } = await import('./convert.js')
  await convertCommand({ modelPath, out: flags.out, check: flags.check === true, print: out })
  return EXIT.ok
}

async function pull (flags: Flags): Promise<number> {
  const config = configFor(flags, true)
  const { s3Store } = await import('../models/s3-store.js')
  const store = s3Store({ s3: config.s3, modelDir: config.modelDir, tuning: config.modelStore })
  try {
    const bar = progressBar('downloading')
    const bundle = await store.resolve((p) => bar(p.downloadedBytes, p.totalBytes))
    if (bundle.sourceError !== undefined) err(`warning: ${bundle.sourceError}; kept the verified cached copy`)
    const { lastDownload } = store.counters
    const how = bundle.source === 's3' && lastDownload !== undefined ? `downloaded ${mb(lastDownload.bytes)} at ${lastDownload.mbPerS} MB/s` : 'cache hit, nothing downloaded'
    out(`${bundle.source}: ${bundle.modelFile} (version ${bundle.spec?.version ?? 'without manifest'}; ${how})`)
    return EXIT.ok
  } finally {
    store.client.destroy()
  }
}

async function list (flags: Flags): Promise<number> {
  const config = configFor(flags, false)
  const { listVersions } = await import('../models/publish.js')
  const { createS3Client, explainS3Error } = await import('../models/s3.js')
  const client = createS3Client({ ...config.s3, ...config.modelStore })
  try {
    const rows = await listVersions(client, config.s3.bucket, flags.prefix ?? '')
    if (rows.length === 0) {
      err(`no bundles under s3://${config.s3.bucket}/${flags.prefix ?? ''}`)
      return EXIT.ok
    }
    out(['VERSION', 'SIZE', 'DATE', 'LABELS', 'S3_MODEL_KEY'].join('\t'))
    for (const r of rows) {
      out([r.version, r.bytes === undefined ? '?' : mb(r.bytes), r.date?.toISOString() ?? '?', r.labels ?? '?', r.problem === undefined ? r.modelKey : `${r.folder}/ (${r.problem})`].join('\t'))
    }
    return EXIT.ok
  } catch (e) {
    throw explainS3Error(e, `s3://${config.s3.bucket}/${flags.prefix ?? ''}`, 'bucket')
  } finally {
    client.destroy()
  }
}

async function verify (flags: Flags): Promise<number> {
  const config = configFor(flags, true)
  const { s3Store } = await import('../models/s3-store.js')
  const { verifyCache } = await import('../models/verify.js')
  const store = s3Store({ s3: config.s3, modelDir: config.modelDir, tuning: config.modelStore })
  try {
    const report = await verifyCache(store, config.modelDir)
    for (const e of report.entries) {
      const state = e.problem !== undefined ? `DAMAGED ${e.problem}` : e.current ? `ok, current in S3, ${e.s3 === 'match' ? 'matches S3' : e.s3 === 'differs' ? 'DIFFERS from S3' : 'S3 publishes no hash to compare'}` : 'ok, an older version'
      out(`${e.dir}\t${e.version ?? '?'}\t${state}`)
    }
    if (report.s3Error !== undefined) err(`error: ${report.s3Error}`)
    else if (!report.entries.some((e) => e.current)) err(`the current S3 version (${report.currentVersion ?? '?'}) is not cached; run shine-models pull`)
    if (report.entries.some((e) => e.problem !== undefined)) err('damaged copies are never served; shine-models pull downloads the current version again')
    return report.ok ? EXIT.ok : EXIT.failed
  } finally {
    store.client.destroy()
  }
}

/** The serving key and an S3 client for promote, rollback and status; the client is closed after `run`. */
async function withServingKey<T> (flags: Flags, run: (t: import('../models/promote.js').PromoteTarget, where: string) => Promise<T>): Promise<T> {
  const config = configFor(flags, true)
  const { createS3Client, explainS3Error } = await import('../models/s3.js')
  const client = createS3Client({ ...config.s3, ...config.modelStore })
  const where = `s3://${config.s3.bucket}/${config.s3.modelKey}`
  try {
    return await run({ client, bucket: config.s3.bucket, servingKey: config.s3.modelKey, prefix: flags.prefix }, where)
  } catch (e) {
    const name = (e as Error).name
    if (name === 'PromoteRefusedError' || name === 'ManifestError') throw e
    throw explainS3Error(e, where)
  } finally {
    client.destroy()
  }
}

async function promote (flags: Flags): Promise<number> {
  if (flags.version === undefined) throw new UsageError('--version is required')
  const version = flags.version
  const { promote: promoteVersion } = await import('../models/promote.js')
  return await withServingKey(flags, async (target, where) => {
    const { spec, history } = await promoteVersion(target, version)
    out(`promoted ${spec.name} ${spec.version} to ${where} (verified; ${history.length} promotion(s) recorded); servers pick it up within MODEL_POLL_S`)
    return EXIT.ok
  })
}

async function rollback (flags: Flags): Promise<number> {
  const { rollback: rollbackVersion } = await import('../models/promote.js')
  return await withServingKey(flags, async (target, where) => {
    const { spec, from } = await rollbackVersion(target)
    out(`rolled back ${where} from ${from} to ${spec.version}; servers pick it up within MODEL_POLL_S`)
    return EXIT.ok
  })
}

async function status (flags: Flags): Promise<number> {
  const { servingStatus } = await import('../models/promote.js')
  return await withServingKey(flags, async (target, where) => {
    const s = await servingStatus(target)
    out(`${where}\t${s.version ?? `? (${s.problem ?? 'unreadable'})`}`)
    for (const p of s.history) out(`  promoted ${p.version} from ${p.from} at ${p.at}`)
    return s.version === undefined ? EXIT.failed : EXIT.ok
  })
}

const COMMANDS: Record<string, (flags: Flags, args: string[]) => Promise<number>> = { push, pull, list, verify, convert, promote, rollback, status }

async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (e) {
    err(`shine-models: ${(e as Error).message} (see --help)`)
    return EXIT.usage
  }
  const [command, ...args] = parsed.positionals
  if (command === undefined || COMMANDS[command] === undefined) {
    if (parsed.values.help === true && command === undefined) {
      out(HELP.main!)
      return EXIT.ok
    }
    err(command === undefined ? HELP.main! : `shine-models: unknown command "${command}" (push, pull, list, verify, convert, promote, rollback, status)`)
    return EXIT.usage
  }
  if (parsed.values.help === true) {
    out(HELP[command]!)
    return EXIT.ok
  }
  try {
    return await COMMANDS[command](parsed.values, args)
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]
    err(`shine-models ${command}: ${message}`)
    return EXIT_BY_ERROR[(e as Error).name] ?? EXIT.failed
  }
}

process.exitCode = await main(process.argv.slice(2))
