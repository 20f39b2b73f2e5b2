// Keras fixtures (test/fixtures/keras, from the fixtures branch) and the team's ensemble layout.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const KERAS = fileURLToPath(new URL('../fixtures/keras/', import.meta.url))
export const kerasFixture = (path: string) => `${KERAS}${path}`

// The team's labels, in output order (MODELS.md: facial_results.json → class_names).
export const TEAM_LABELS = ['healthy', 'acne', 'bags', 'redness', 'rosacea', 'eczema', 'hyperpigmentation', 'other']

/** What the team's training script wrote beside the model (only class_names is read). */
export const FACIAL_RESULTS = JSON.stringify({ class_names: TEAM_LABELS, test_accuracy: 0.9713, num_classes: 8 })

// The team's model in miniature, as tf.keras 2.13 lays out an .h5 (nested backbones, 32×32 input).
export const MINI_ENSEMBLE_H5 = kerasFixture('mini_ensemble/model-keras2-layout.h5')
export const MINI_ENSEMBLE_TFJS = kerasFixture('mini_ensemble/tfjs/model.json')
export const LAMBDA_H5 = kerasFixture('errors/lambda/model.h5')
export const SAVEDMODEL_PB = kerasFixture('errors/savedmodel/saved_model.pb')
export const SEQUENTIAL_H5 = kerasFixture('sequential_cnn/model.h5')

// The team's S3 layout: s3://shine-skincare-models/hare_run_v6/hare_run_v6_facial/
export const ENSEMBLE_KEY = 'hare_run_v6/hare_run_v6_facial/best_facial_model.h5'
export const ENSEMBLE_RESULTS_KEY = 'hare_run_v6/hare_run_v6_facial/facial_results.json'

export interface Expected {
  inputs: Array<{ name: string, shape: number[], data: Float32Array }>
  outputs: Array<{ name: string, shape: number[], data: Float32Array }>
}

const floats = (b64: string) => {
  const buf = Buffer.from(b64, 'base64')
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
}

/** A case's expected.json: Keras's own outputs for seeded inputs. */
export async function readExpected (name: string): Promise<Expected> {
  const json = JSON.parse(await readFile(kerasFixture(`${name}/expected.json`), 'utf8')) as {
    inputs: Array<{ name: string, shape: number[], data: string }>
    outputs: Array<{ name: string, shape: number[], data: string }>
  }
  const decode = (io: { name: string, shape: number[], data: string }) => ({ ...io, data: floats(io.data) })
  return { inputs: json.inputs.map(decode), outputs: json.outputs.map(decode) }
}
