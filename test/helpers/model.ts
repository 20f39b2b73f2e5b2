// Tiny real ONNX bundles for tests, written into a tap testdir.
import { buildSlowClassifier, buildTinyClassifier } from '../../scripts/onnx-builder.js'
import { writeBundle, type WrittenBundle } from '../../scripts/bundle-writer.js'

export const SKIN_LABELS = ['acne', 'rosacea', 'eczema', 'hyperpigmentation', 'wrinkles', 'dryness', 'oiliness', 'healthy']
export const TINY_SIZE = 32

export interface TinyBundleOptions {
  layout?: 'NCHW' | 'NHWC'
  activation?: 'softmax' | 'sigmoid' | 'none'
  labels?: string[]
  seed?: number
  version?: string
  /** Overrides of the manifest (e.g. a wrong sha256). */
  manifest?: Record<string, unknown>
}

export async function writeTinyBundle (dir: string, o: TinyBundleOptions = {}): Promise<WrittenBundle> {
  const layout = o.layout ?? 'NCHW'
  const labels = o.labels ?? SKIN_LABELS
  const model = buildTinyClassifier({ seed: o.seed ?? 42, classes: labels.length, size: TINY_SIZE, layout })
  return await writeBundle(dir, model, {
    name: 'tiny-test',
    version: o.version ?? 'test-1',
    input: { name: 'input', layout, width: TINY_SIZE, height: TINY_SIZE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    output: { name: 'logits', activation: o.activation ?? 'softmax' },
    labels,
    ...o.manifest
  })
}

// 112², 64 channels, 12 layers: ~150 ms per inference on one thread (scripts/onnx-builder.ts),
// long enough for a test to act while an inference runs.
export const SLOW_SIZE = 112

/** A bundle whose every inference takes ~150 ms, with the tiny bundle's labels and activation. */
export async function writeSlowBundle (dir: string, layers = 12): Promise<WrittenBundle> {
  const model = buildSlowClassifier({ seed: 7, classes: SKIN_LABELS.length, size: SLOW_SIZE, channels: 64, layers })
  return await writeBundle(dir, model, {
    name: 'slow-test',
    version: 'test-1',
    input: { name: 'input', layout: 'NCHW', width: SLOW_SIZE, height: SLOW_SIZE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    output: { name: 'logits', activation: 'softmax' },
    labels: SKIN_LABELS
  })
}
