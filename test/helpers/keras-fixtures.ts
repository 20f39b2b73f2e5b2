// The Keras fixtures (test/fixtures/keras/, made by scripts/keras/make_fixtures.py) and the
// outputs Keras gave for them.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'

export const KERAS_FIXTURES = fileURLToPath(new URL('../fixtures/keras/', import.meta.url))

export interface TensorData {
  name?: string
  shape: number[]
  data: Float32Array
}

export interface KerasCase {
  name: string
  dir: string
  inputs: TensorData[]
  outputs: TensorData[]
  /** The model files of this case that exist: model.h5, model.keras, model-keras2-layout.h5, tfjs/model.json. */
  files: string[]
}

const decode = (b64: string) => {
  const bytes = Buffer.from(b64, 'base64')
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}

const MODEL_FILES = ['model.h5', 'model.keras', 'model-keras2-layout.h5', 'tfjs/model.json']
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
// Real tf.keras 2 files from public repositories are not committed: scripts/keras/reference_keras2.py
// restores them into .scratch/keras2/, and shared/keras2/ may hold them for every machine.
const RESTORED = [join(ROOT, '.scratch', 'keras2'), join(ROOT, '..', 'shared', 'keras2')]

export function loadCase (dir: string): KerasCase {
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { case: string, inputs: Array<{ name?: string, shape: number[], data: string }>, outputs: Array<{ name?: string, shape: number[], data: string }> }
  const tensor = (t: { name?: string, shape: number[], data: string }) => ({ ...t, data: decode(t.data) })
  return {
    name: expected.case,
    dir,
    inputs: expected.inputs.map(tensor),
    outputs: expected.outputs.map(tensor),
    files: [dir, ...RESTORED.map((r) => join(r, basename(dir)))].flatMap((d) => MODEL_FILES.map((f) => join(d, f))).filter((f) => existsSync(f))
  }
}

/** Every case folder with an expected.json (the keras2-* ones only hold files when restored). */
export function kerasCases (): KerasCase[] {
  return readdirSync(KERAS_FIXTURES, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(KERAS_FIXTURES, d.name, 'expected.json')))
    .map((d) => loadCase(join(KERAS_FIXTURES, d.name)))
}

/** Runs an ONNX model on the case's inputs (by input name, else in order); outputs in graph order. */
export async function runOnnx (onnx: Uint8Array, inputs: TensorData[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(onnx)
  try {
    const feeds: Record<string, ort.Tensor> = {}
    session.inputNames.forEach((name, i) => {
      const t = inputs.find((x) => x.name === name) ?? inputs[i]
      if (t === undefined) throw new Error(`no input for ${name}`)
      feeds[name] = new ort.Tensor('float32', t.data, t.shape)
    })
    const out = await session.run(feeds)
    return session.outputNames.map((n) => out[n]?.data as Float32Array)
  } finally {
    await session.release()
  }
}

export function maxAbsDiff (a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)))
  return Number.isNaN(m) ? Infinity : m
}
