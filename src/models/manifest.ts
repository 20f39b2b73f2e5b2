import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import type { ModelFormat } from '../convert/detect.js'
import type { TensorSpec } from '../imaging/tensor.js'

export type Activation = 'softmax' | 'sigmoid' | 'none' | 'auto'

const Triple = Type.Array(Type.Number(), { minItems: 3, maxItems: 3 })
const Hex64 = Type.String({ pattern: '^[0-9a-fA-F]{64}$' })
// A bundle file name: no folders, no '..', so a manifest cannot point outside its bundle.
const FileName = Type.String({ pattern: '^(?!\\.\\.?$)[A-Za-z0-9._-]{1,200}$' })

// DESIGN.md's manifest.json; extra fields are allowed and ignored.
export const ManifestSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  version: Type.String({ minLength: 1, maxLength: 200 }),
  // Keras and TF.js models are converted to ONNX at load (README "Keras models").
  format: Type.Enum(['onnx', 'keras-h5', 'keras', 'tfjs']),
  file: FileName,
  sha256: Type.Optional(Type.Record(Type.String(), Hex64)),
  demo: Type.Optional(Type.Boolean()),
  // The publisher's own figure, passed through as declared (the v6 answer's model_info).
  accuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  input: Type.Object({
    name: Type.String({ minLength: 1 }),
    layout: Type.Enum(['NCHW', 'NHWC']),
    width: Type.Integer({ minimum: 1, maximum: 8192 }),
    height: Type.Integer({ minimum: 1, maximum: 8192 }),
    mean: Triple,
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 3, maxItems: 3 }),
    channels: Type.Optional(Type.Enum(['RGB', 'BGR']))
  }),
  output: Type.Object({
    name: Type.String({ minLength: 1 }),
    activation: Type.Enum(['softmax', 'sigmoid', 'none'])
  }),
  labels: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 100000 })
})

export type Manifest = Static<typeof ManifestSchema>

/** Everything the server needs to know about a model, whether a manifest said it or the file did. */
export interface ModelSpec {
  name: string
  version: string
  /** The format of the model as published; anything but onnx is served converted. */
  format: ModelFormat
  /** The model file's name inside its bundle folder. */
  file: string
  sha256: Readonly<Record<string, string>>
  demo: boolean
  /** Accuracy in 0..1 as the manifest declares it; never measured here. */
  accuracy?: number
  input: TensorSpec & { name: string }
  output: { name: string, activation: Activation }
  labels: readonly string[]
  /** Things an operator should know (shown in the log and /health). */
  warnings: readonly string[]
}

export class ManifestError extends Error {
  override name = 'ManifestError'
}

/** Parses manifest.json text; the error lists every problem with its JSON path. */
export function parseManifest (text: string): ModelSpec {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ManifestError(`manifest.json is not JSON: ${(err as Error).message}`)
  }
  if (!Value.Check(ManifestSchema, json)) {
    const problems = Value.Errors(ManifestSchema, json).slice(0, 5)
      .map((e) => `${e.instancePath === '' ? '/' : e.instancePath} ${e.message}`)
    throw new ManifestError(`manifest.json is invalid: ${problems.join('; ')}`)
  }
  const m = json
  if (m.sha256 !== undefined && m.sha256[m.file] === undefined) {
    throw new ManifestError(`manifest.json is invalid: sha256 has no entry for "${m.file}"`)
  }
  if (new Set(m.labels).size !== m.labels.length) {
    throw new ManifestError('manifest.json is invalid: labels must be unique')
  }
  const warnings: string[] = []
  if (m.sha256 === undefined) warnings.push('manifest.json has no sha256: the model file cannot be verified')
  if (m.demo === true) warnings.push('demo model: deterministic untrained weights, predictions are meaningless')
  return {
    name: m.name,
    version: m.version,
    format: m.format as ModelFormat,
    file: m.file,
    sha256: Object.freeze({ ...m.sha256 }),
    demo: m.demo === true,
    ...(m.accuracy === undefined ? {} : { accuracy: m.accuracy }),
    input: {
      name: m.input.name,
      layout: m.input.layout as TensorSpec['layout'],
      width: m.input.width,
      height: m.input.height,
      mean: [m.input.mean[0], m.input.mean[1], m.input.mean[2]] as const,
      std: [m.input.std[0], m.input.std[1], m.input.std[2]] as const,
      channels: (m.input.channels ?? 'RGB') as TensorSpec['channels']
    },
    output: { name: m.output.name, activation: m.output.activation as Activation },
    labels: Object.freeze([...m.labels]),
    warnings: Object.freeze(warnings)
  }
}

const shape = (dims: ReadonlyArray<number | string>) => `[${dims.join(', ')}]`

export interface TensorMetadata {
  name: string
  /** Symbolic dimensions (batch) are strings or -1. */
  dims: ReadonlyArray<number | string>
}

/** Labels found beside a model without a manifest (src/models/labels.ts). */
export interface SideLabels {
  file: string
  labels: readonly string[]
}

export interface MetadataOptions {
  format?: ModelFormat
  labels?: SideLabels | undefined
  /** The published model file's sha256: names the version (contentVersion) in place of a manifest's. */
  sha256?: string | undefined
}

/**
 * What a manifest-less model's version is called: its file's content, so two versions (the
 * primary and a canary, or before and after a swap) are told apart in answers and metrics.
 */
export function contentVersion (sha256: string | undefined): string {
  return sha256 === undefined ? 'unversioned' : `sha256-${sha256.slice(0, 12)}`
}

const MODEL_SUFFIX = /\.(onnx|h5|hdf5|keras|json)$/i

/**
 * A model file with no manifest: the input and output shapes tell layout, size and label count.
 * Pixels are RGB scaled to 0..1 without mean/std (what the team's Keras training did, MODELS.md),
 * labels come from a side JSON when there is one, and the activation is decided per output ('auto').
 */
export function specFromModelMetadata (
  file: string, inputs: readonly TensorMetadata[], outputs: readonly TensorMetadata[], options: MetadataOptions = {}
): ModelSpec {
  const input = inputs[0]
  const output = outputs[0]
  if (input === undefined || output === undefined) throw new ManifestError(`${file} has no inputs or no outputs`)
  const dims = input.dims.map((d) => (typeof d === 'number' && d > 0 ? d : undefined))
  let layout: TensorSpec['layout']
  let height: number | undefined
  let width: number | undefined
  if (dims.length === 4 && dims[1] === 3) {
    layout = 'NCHW'; height = dims[2]; width = dims[3]
  } else if (dims.length === 4 && dims[3] === 3) {
    layout = 'NHWC'; height = dims[1]; width = dims[2]
  } else {
    throw new ManifestError(`${file}: input "${input.name}" has shape [${input.dims.join(', ')}]; without a manifest the server needs [N,3,H,W] or [N,H,W,3]`)
  }
  const classes = output.dims.at(-1)
  if (width === undefined || height === undefined || typeof classes !== 'number' || classes < 1) {
    throw new ManifestError(`${file}: input [${input.dims.join(', ')}] / output [${output.dims.join(', ')}] need fixed sizes without a manifest`)
  }
  const side = options.labels
  if (side !== undefined && side.labels.length !== classes) {
    throw new ManifestError(`${side.file} names ${side.labels.length} classes but ${file}'s output shape is ${shape(output.dims)}`)
  }
  const labelsFrom = side === undefined ? 'labels are class_0…' : `labels from ${side.file}`
  return {
    name: file.replace(MODEL_SUFFIX, ''),
    version: contentVersion(options.sha256),
    format: options.format ?? 'onnx',
    file,
    sha256: {},
    demo: false,
    input: { name: input.name, layout, width, height, mean: [0, 0, 0], std: [1, 1, 1], channels: 'RGB' },
    output: { name: output.name, activation: 'auto' },
    labels: Object.freeze(side === undefined ? Array.from({ length: classes }, (_, i) => `class_${i}`) : [...side.labels]),
    warnings: [`no manifest.json beside the model: input size was read from the model file, pixels are RGB scaled to 0..1 with no mean/std, ${labelsFrom}`]
  }
}

/**
 * The manifest must match the model it describes; a mismatch found here is a clear boot error
 * instead of a failure on the first request.
 */
export function checkSpecAgainstModel (
  spec: ModelSpec, inputs: readonly TensorMetadata[], outputs: readonly TensorMetadata[]
): void {
  const input = inputs.find((i) => i.name === spec.input.name)
  if (input === undefined) {
    throw new ManifestError(`manifest input "${spec.input.name}" is not an input of ${spec.file} (it has: ${inputs.map((i) => i.name).join(', ')})`)
  }
  const output = outputs.find((o) => o.name === spec.output.name)
  if (output === undefined) {
    throw new ManifestError(`manifest output "${spec.output.name}" is not an output of ${spec.file} (it has: ${outputs.map((o) => o.name).join(', ')})`)
  }
  const { width, height, layout } = spec.input
  const expected = layout === 'NCHW' ? [3, height, width] : [height, width, 3]
  const fixed = input.dims.slice(1)
  if (input.dims.length !== 4 || fixed.some((d, i) => typeof d === 'number' && d > 0 && d !== expected[i])) {
    throw new ManifestError(`manifest input ${layout} ${width}×${height} does not fit ${spec.file}'s input shape ${shape(input.dims)}`)
  }
  const classes = output.dims.at(-1)
  if (typeof classes === 'number' && classes > 0 && classes !== spec.labels.length) {
    throw new ManifestError(`manifest has ${spec.labels.length} labels but ${spec.file}'s output shape is ${shape(output.dims)}`)
  }
}
