// TF.js layers models: model.json (modelTopology + weightsManifest) and its binary weight shards.
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ConvertError } from './errors.js'
import { isObject } from './keras-model.js'
import { checkWeightSize, weightKind, type StoredWeight, type WeightSource } from './weights.js'

interface ManifestWeight {
  name: string
  shape: number[]
  dtype: string
  quantization?: { dtype: string, scale?: number, min?: number }
}

export interface TfjsModel {
  topology: unknown
  kerasVersion: string
  weights: WeightSource
  /** The shard files model.json names (the bundle's other files). */
  shards: string[]
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 }
// A shard path is a file beside model.json: no folders, no '..'.
const SAFE_SHARD = /^(?!\.\.?$)[A-Za-z0-9._-]{1,200}$/

/** The shard file names a model.json lists, checked to stay inside its folder. */
export function shardPaths (manifest: unknown, what: string): string[] {
  if (!Array.isArray(manifest)) throw new ConvertError(`${what}: weightsManifest is not a list`)
  return manifest.flatMap((group) => {
    const paths = isObject(group) && Array.isArray(group.paths) ? group.paths : []
    return paths.map((p) => {
      if (typeof p !== 'string' || !SAFE_SHARD.test(p)) throw new ConvertError(`${what}: weight shard path ${JSON.stringify(p)} is not a file name beside model.json`)
      return p
    })
  })
}

function decode (buf: Buffer, offset: number, w: ManifestWeight, count: number, where: string): Float32Array {
  const q = w.quantization
  const view = (n: number) => buf.subarray(offset, offset + n)
  if (q === undefined) {
    if (w.dtype !== 'float32') throw new ConvertError(`${where}: dtype ${w.dtype} is not supported (float32)`)
    const b = view(count * 4)
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
  }
  // Affine quantization (tensorflowjs_converter --quantize_uint8/uint16): value = q·scale + min.
  if ((q.dtype === 'uint8' || q.dtype === 'uint16') && typeof q.scale === 'number' && typeof q.min === 'number') {
    const out = new Float32Array(count)
    for (let i = 0; i < count; i++) {
      const v = q.dtype === 'uint8' ? buf[offset + i] as number : buf.readUInt16LE(offset + 2 * i)
      out[i] = v * q.scale + q.min
    }
    return out
  }
  throw new ConvertError(`${where}: quantization ${q.dtype} is not supported (uint8/uint16 affine)`)
}

export async function readTfjs (path: string, what: string): Promise<TfjsModel> {
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  const topology = json.modelTopology as Record<string, unknown>
  const model = isObject(topology.model_config) ? topology.model_config : topology
  const shards = shardPaths(json.weightsManifest, what)
  const index = new Map<string, Map<string, StoredWeight>>()
  const dir = dirname(path)
  for (const group of json.weightsManifest as Array<{ paths: string[], weights: ManifestWeight[] }>) {
    const files = group.paths.map((p) => join(dir, p))
    const sizes = await Promise.all(files.map(async (f) => await stat(f).then((s) => s.size, () => {
      throw new ConvertError(`${what}: weight shard ${basename(f)} is missing`)
    })))
    const total = sizes.reduce((a, b) => a + b, 0)
    let offset = 0
    const loaded = Buffer.concat(await Promise.all(files.map(async (f) => await readFile(f))))
    for (const w of Array.isArray(group.weights) ? group.weights : []) {
      const where = `${what}: weight "${w.name}"`
      checkWeightSize(w.shape, where)
      const count = w.shape.reduce((a, b) => a * b, 1)
      const bytes = count * (BYTES[w.quantization?.dtype ?? w.dtype] ?? 4)
      if (offset + bytes > total) throw new ConvertError(`${where} runs past the end of its shards (${total} bytes): a shard is truncated`)
      const at = offset
      const data = decode(loaded, at, w, count, where)
      const parts = w.name.split('/')
      const layer = parts.length >= 2 ? parts.at(-2) as string : w.name
      const kinds = index.get(layer) ?? new Map<string, StoredWeight>()
      kinds.set(weightKind(w.name), { dims: w.shape, read: () => data })
      index.set(layer, kinds)
      offset += bytes
    }
  }
  return {
    topology: model,
    kerasVersion: typeof topology.keras_version === 'string' ? topology.keras_version : 'tfjs',
    weights: {
      lookup (p) {
        const byKind = index.get(p.at(-1) as string)
        return byKind === undefined ? undefined : { byKind, ordered: [...byKind.values()] }
      }
    },
    shards
  }
}
