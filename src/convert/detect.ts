// Which kind of model file this is, from its bytes (never its name), and a clear refusal with
// export advice for the kinds the server cannot run.
import { open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ConvertError } from './errors.js'
import { HDF5_SIGNATURE, attr, isGroup, openHdf5 } from './hdf5.js'

export type ModelFormat = 'onnx' | 'keras-h5' | 'keras' | 'tfjs'

const ZIP_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04])
// HDF5 allows a user block before the signature at 512, 1024, 2048… bytes.
const HDF5_OFFSETS = [0, 512, 1024, 2048, 4096]
export const MAX_JSON_BYTES = 64 * 2 ** 20

const HOW_TO_EXPORT = 'save the model with model.save("model.h5") or model.save("model.keras") (architecture and weights), or export ONNX with tf2onnx'

async function head (path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buf = Buffer.alloc(bytes)
    const { bytesRead } = await handle.read(buf, 0, bytes, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

function isHdf5 (buf: Buffer): boolean {
  return HDF5_OFFSETS.some((o) => buf.subarray(o, o + 8).equals(HDF5_SIGNATURE))
}

async function hdf5Kind (path: string, what: string): Promise<ModelFormat> {
  const file = await openHdf5(path, what)
  try {
    if (typeof attr(file, 'model_config') === 'string') return 'keras-h5'
    const keys = file.keys()
    if (attr(file, 'layer_names') !== undefined || keys.includes('layers') || isGroup(file.get('model_weights'))) {
      throw new ConvertError(`${what} holds only weights (model.save_weights), not the architecture: ${HOW_TO_EXPORT}`)
    }
    throw new ConvertError(`${what} is an HDF5 file but not a Keras model (no model_config attribute): ${HOW_TO_EXPORT}`)
  } finally {
    file.close()
  }
}

function jsonKind (text: string, what: string): ModelFormat {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConvertError(`${what} is not valid JSON (${(err as Error).message})`)
  }
  // The text starts with '{': what parses is an object.
  const j = json as Record<string, unknown>
  const topology = j.modelTopology as Record<string, unknown> | undefined
  if (j.format === 'graph-model' || (topology !== undefined && 'node' in topology)) {
    throw new ConvertError(`${what} is a TF.js graph model (a frozen TensorFlow graph), which this server does not run: convert the Keras model with tensorflowjs_converter --output_format=tfjs_layers_model, or ${HOW_TO_EXPORT}`)
  }
  if (topology !== undefined && Array.isArray(j.weightsManifest)) return 'tfjs'
  if ('class_name' in j || 'keras_version' in j) {
    throw new ConvertError(`${what} is a Keras architecture (model.to_json()) without weights: ${HOW_TO_EXPORT}`)
  }
  throw new ConvertError(`${what} is JSON but not a TF.js layers model (no modelTopology and weightsManifest)`)
}

/** The model format of `path`; a directory is looked into only to name what it is. */
export async function detectFormat (path: string, what = path): Promise<ModelFormat> {
  const info = await stat(path)
  if (info.isDirectory()) {
    const has = async (f: string) => await stat(join(path, f)).then(() => true, () => false)
    if (await has('saved_model.pb')) throw new ConvertError(`${what} is a TensorFlow SavedModel, which this server does not run: ${HOW_TO_EXPORT}`)
    throw new ConvertError(`${what} is a folder, not a model file`)
  }
  const buf = await head(path, 4096 + 8)
  if (buf.length === 0) throw new ConvertError(`${what} is empty`)
  if (isHdf5(buf)) return await hdf5Kind(path, what)
  if (buf.subarray(0, 4).equals(ZIP_SIGNATURE)) return 'keras'
  const first = buf[0] as number
  const second = buf[1] ?? 0
  if (first === 0x80 && second >= 2 && second <= 5) {
    throw new ConvertError(`${what} is a Python pickle: loading one runs arbitrary code, so it is never accepted; ${HOW_TO_EXPORT}`)
  }
  // SavedModel's saved_model.pb starts with schema version 1; an ONNX ModelProto with ir_version ≥ 3.
  if (first === 0x08 && second === 0x01 && buf[2] === 0x12) {
    throw new ConvertError(`${what} is a TensorFlow SavedModel (saved_model.pb), which this server does not run: ${HOW_TO_EXPORT}`)
  }
  if (first === 0x08 && second >= 3 && second < 0x40) return 'onnx'
  const text = buf.toString('utf8').replace(/^\uFEFF/, '').trimStart()
  if (text.startsWith('{')) {
    if (info.size > MAX_JSON_BYTES) throw new ConvertError(`${what} is a ${info.size}-byte JSON file; a model description is far smaller`)
    return jsonKind(await readFile(path, 'utf8'), what)
  }
  throw new ConvertError(`${what} is not a model this server recognises (ONNX, Keras .h5 or .keras, or a TF.js layers model.json)`)
}
