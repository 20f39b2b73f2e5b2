// Builds the demo model bundle: npx tsx scripts/build-demo-model.ts [--out models/demo] [--force]
// Deterministic, and a no-op when the bundle on disk already matches.
import { readFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import { BUILDER_VERSION, buildMobileNetV2 } from './onnx-builder.js'
import { MANIFEST_FILE, sha256Hex, writeBundle } from './bundle-writer.js'
import type { ManifestFields } from './bundle-writer.js'

const DEMO_SEED = 0x5eed

// The team's 8 classes in their model's output order (MODELS.md, facial_results.json), so the
// demo answers in the vocabulary the frontend expects.
const LABELS = ['healthy', 'acne', 'bags', 'redness', 'rosacea', 'eczema', 'hyperpigmentation', 'other']

const MODEL_FILE = 'model.onnx'

// The seed is part of the builder string so changing it also invalidates the bundle
const DEMO_MANIFEST: ManifestFields = {
  name: 'shine-demo-mobilenetv2',
  version: 'demo-1',
  format: 'onnx',
  file: MODEL_FILE,
  demo: true,
  description: 'DEMO: deterministic untrained weights, predictions are meaningless',
  builder: `${BUILDER_VERSION} mobilenetv2 seed=${DEMO_SEED}`,
  input: {
    name: 'input',
    layout: 'NCHW',
    width: 224,
    height: 224,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225]
  },
  output: { name: 'logits', activation: 'softmax' },
  labels: LABELS
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

async function isUpToDate (dir: string): Promise<boolean> {
  let manifest: unknown
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
  } catch {
    return false
  }
  if (typeof manifest !== 'object' || manifest === null) return false
  const { sha256, ...rest } = manifest as Record<string, unknown>
  // compare every field, not just the builder string, so an edited label list
  // or description is picked up even if nobody bumped BUILDER_VERSION
  if (!isDeepStrictEqual(rest, DEMO_MANIFEST)) return false
  const expected = (sha256 as Record<string, unknown> | undefined)?.[MODEL_FILE]
  if (typeof expected !== 'string') return false
  try {
    return sha256Hex(await readFile(join(dir, MODEL_FILE))) === expected
  } catch {
    return false
  }
}

const USAGE = 'usage: tsx scripts/build-demo-model.ts [--out models/demo] [--force]'

function parseCli (): { out?: string, force: boolean, help: boolean } {
  try {
    const { values } = parseArgs({
      options: {
        out: { type: 'string' },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    })
    return { out: values.out, force: values.force === true, help: values.help === true }
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    process.exit(2)
  }
}

async function main (): Promise<void> {
  const values = parseCli()
  if (values.help) {
    console.log(USAGE)
    return
  }
  // an explicit --out is relative to the caller's cwd; the default lives in the repo
  const dir = values.out !== undefined ? resolve(values.out) : join(repoRoot, 'models', 'demo')
  const rel = relative(process.cwd(), dir)
  const shown = rel === '' ? '.' : rel.startsWith('..') ? dir : rel

  if (!values.force && await isUpToDate(dir)) {
    console.log('demo model up to date')
    return
  }

  const started = performance.now()
  const bytes = buildMobileNetV2({ seed: DEMO_SEED, classes: LABELS.length, width: 224, height: 224 })
  const { sha256 } = await writeBundle(dir, bytes, DEMO_MANIFEST)
  const ms = performance.now() - started
  const mb = (bytes.byteLength / 1024 / 1024).toFixed(1)
  console.log(`wrote ${join(shown, MODEL_FILE)} (${mb} MiB, sha256 ${sha256.slice(0, 12)}…) and ${MANIFEST_FILE} in ${ms.toFixed(0)} ms`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
