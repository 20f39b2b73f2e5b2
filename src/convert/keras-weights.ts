// Where Keras keeps weights in its two HDF5 layouts (test/fixtures/keras/FORMATS.md):
// - legacy `.h5` (Keras 2 and Keras 3's `model.save('x.h5')`): `model_weights/<top layer>/` with a
//   `weight_names` attribute listing `<layer>/<kind>[:0]` paths, nested models flattened into
//   their top-level group;
// - `.keras` (`model.weights.h5`): `layers/<group>/vars/<i>` in the layer's variable order, the
//   layer's own name in the `vars` group's `name` attribute, nested models under `layers/` again.
import { ConvertError } from './errors.js'
import { attr, isDataset, isGroup, type H5Dataset, type H5File, type H5Group } from './hdf5.js'
import { checkWeightSize, toFloat32, weightKind, type LayerWeights, type StoredWeight, type WeightSource } from './weights.js'

function stored (d: H5Dataset, where: string): StoredWeight {
  const dims = d.shape ?? []
  checkWeightSize(dims, where)
  return {
    dims,
    read: () => {
      try {
        return toFloat32(d.value, where)
      } catch (err) {
        if (err instanceof ConvertError) throw err
        throw new ConvertError(`${where} could not be read (${(err as Error).message}): the file is damaged`)
      }
    }
  }
}

function names (value: unknown): string[] {
  if (value === null || value === undefined) return []
  if (typeof value === 'string') return [value]
  return Array.from(value as ArrayLike<unknown>).filter((v): v is string => typeof v === 'string')
}

/** Legacy HDF5: lookups by (top-level layer, layer) name; `root` is `model_weights` (or the file). */
export function legacyWeights (root: H5Group, what: string): WeightSource {
  const index = new Map<string, Map<string, StoredWeight>>()
  for (const top of root.keys()) {
    const group = root.get(top)
    if (!isGroup(group)) continue
    for (const name of names(attr(group, 'weight_names'))) {
      const d = group.get(name)
      if (!isDataset(d)) throw new ConvertError(`${what}: weight "${top}/${name}" is listed but missing`)
      const parts = name.split('/')
      const layer = parts.length >= 2 ? parts.at(-2) as string : top
      const key = `${top}\u0000${layer}`
      const kinds = index.get(key) ?? new Map<string, StoredWeight>()
      kinds.set(weightKind(name), stored(d, `${what}: weight "${top}/${name}"`))
      index.set(key, kinds)
    }
  }
  return {
    lookup (path) {
      const byKind = index.get(`${path[0]}\u0000${path.at(-1)}`)
      return byKind === undefined ? undefined : { byKind, ordered: [...byKind.values()] }
    }
  }
}

/** `.keras` weights: lookups by the full chain of layer names. */
export function kerasV3Weights (file: H5File, what: string): WeightSource {
  const index = new Map<string, LayerWeights>()
  const visit = (group: H5Group, prefix: string[]) => {
    for (const key of group.keys()) {
      const sub = group.get(key)
      if (!isGroup(sub)) continue
      const vars = sub.get('vars')
      const name = isGroup(vars) ? attr(vars, 'name') : undefined
      const path = [...prefix, typeof name === 'string' ? name : key]
      if (isGroup(vars)) {
        const ordered = vars.keys().map(Number).filter(Number.isInteger).sort((a, b) => a - b).map((i) => {
          const d = vars.get(String(i))
          if (!isDataset(d)) throw new ConvertError(`${what}: ${path.join('/')} variable ${i} is not a dataset`)
          return stored(d, `${what}: weight ${i} of layer "${path.join('/')}"`)
        })
        index.set(path.join('/'), { ordered })
      }
      const inner = sub.get('layers')
      if (isGroup(inner)) visit(inner, path)
    }
  }
  const layers = file.get('layers')
  if (isGroup(layers)) visit(layers, [])
  return {
    lookup: (path) => index.get(path.join('/'))
  }
}
