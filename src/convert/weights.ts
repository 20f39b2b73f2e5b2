import { ConvertError } from './errors.js'

/** One stored weight, read only when a layer asks for it (a 128 MB file is never held twice). */
export interface StoredWeight {
  dims: number[]
  read: () => Float32Array
}

/**
 * A layer's stored weights: by kind (`kernel`, `bias`, `moving_mean`…) when the file names them
 * (HDF5 `weight_names`, TF.js manifests), or in the layer's own variable order (`.keras` files).
 */
export interface LayerWeights {
  byKind?: ReadonlyMap<string, StoredWeight>
  ordered: readonly StoredWeight[]
}

export interface WeightSource {
  /** `path` is the chain of layer names from the top-level model down to the layer. */
  lookup: (path: readonly string[]) => LayerWeights | undefined
  close: () => void
}

const MAX_WEIGHT_VALUES = 2 ** 30

/** HDF5/TF.js values as float32; float64 and float16 weights are narrowed, anything else is refused. */
export function toFloat32 (values: unknown, where: string): Float32Array {
  if (values instanceof Float32Array) return values
  if (values instanceof Float64Array) return Float32Array.from(values)
  throw new ConvertError(`${where}: weights of type ${(values as object)?.constructor?.name ?? typeof values} are not supported (float32 or float64 only)`)
}

export function checkWeightSize (dims: readonly number[], where: string): void {
  const count = dims.reduce((a, b) => a * b, 1)
  if (!dims.every((d) => Number.isInteger(d) && d >= 0) || count > MAX_WEIGHT_VALUES) {
    throw new ConvertError(`${where}: a weight of shape [${dims.join(', ')}] is not plausible (over ${MAX_WEIGHT_VALUES} values)`)
  }
}

/** The weight's short kind: `block1/conv/kernel:0` → `kernel`. */
export function weightKind (name: string): string {
  return (name.split('/').at(-1) ?? name).replace(/:\d+$/, '')
}
