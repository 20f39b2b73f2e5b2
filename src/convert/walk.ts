// The Keras graph walk: calls every layer's function in dependency order, through nested models
// and shared layers. It knows no layer by name: the registry does.
import { ConvertError } from './errors.js'
import type { CallArg, KerasGraph, KerasLayer, TensorRef } from './keras-model.js'
import { batchShape } from './keras-model.js'
import type { LayerContext, LayerHandler, Shape, Sym } from './layer-api.js'
import type { GraphIO, OnnxGraph } from './onnx-graph.js'
import { lookupLayer } from './registry.js'
import type { LayerWeights, WeightSource } from './weights.js'

export interface WalkResult {
  inputs: GraphIO[]
  outputs: Array<GraphIO & { shape: Shape }>
  /** Layers converted, by Keras class (nested models counted once per call, their layers inside). */
  layerCounts: Record<string, number>
  parameters: number
}

const refKey = (r: TensorRef) => `${r.layer}\u0000${r.node}\u0000${r.index}`

class Layouts {
  private readonly toCf = new Map<string, string>()
  private readonly toKeras = new Map<string, string>()
  private readonly g: OnnxGraph
  constructor (g: OnnxGraph) {
    this.g = g
  }

  cf (t: Sym): string {
    if (t.cf || t.shape.length < 3) return t.name
    return this.memo(this.toCf, t.name, () => {
      const r = t.shape.length
      return this.g.node('Transpose', [t.name], { perm: [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)] }, `${t.name}_cf`)
    })
  }

  keras (t: Sym): string {
    if (!t.cf || t.shape.length < 3) return t.name
    return this.memo(this.toKeras, t.name, () => {
      const r = t.shape.length
      return this.g.node('Transpose', [t.name], { perm: [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1] }, `${t.name}_nhwc`)
    })
  }

  private memo (map: Map<string, string>, key: string, make: () => string): string {
    let v = map.get(key)
    if (v === undefined) {
      v = make()
      map.set(key, v)
    }
    return v
  }
}

export class GraphWalker {
  readonly layerCounts: Record<string, number> = {}
  parameters = 0
  private readonly counted = new Set<string>()
  private readonly layouts: Layouts
  private readonly g: OnnxGraph
  private readonly weights: WeightSource
  private readonly kerasMajor: number

  constructor (g: OnnxGraph, weights: WeightSource, kerasMajor: number) {
    this.g = g
    this.weights = weights
    this.kerasMajor = kerasMajor
    this.layouts = new Layouts(g)
  }

  /** The top-level model: its InputLayers become graph inputs (NHWC as Keras has them, batch `N`). */
  walkTop (graph: KerasGraph): WalkResult {
    const inputs: GraphIO[] = []
    const bound = graph.inputs.map((ref) => {
      const layer = graph.layers.find((l) => l.name === ref.layer)
      const shape = layer === undefined ? undefined : batchShape(layer.config)
      if (shape === undefined) throw new ConvertError(`input "${ref.layer}" of model "${graph.name}" has no shape`)
      this.g.reserve(ref.layer)
      inputs.push({ name: ref.layer, dims: shape.map((d, i) => (d ?? (i === 0 ? 'N' : `${ref.layer}_d${i}`))) })
      return { name: ref.layer, shape: [null, ...shape.slice(1)], cf: false }
    })
    const outputNames = graph.outputs.map((o) => this.g.unique(o.layer))
    const results = this.walk(graph, bound, [])
    // Outputs go back to Keras' layout and get the output layer's name (an Identity also keeps
    // two outputs that are one tensor apart).
    const outputs = results.map((sym, i) => {
      const name = this.g.nodeAs('Identity', [this.layouts.keras(sym)], outputNames[i] as string)
      return { name, dims: sym.shape.map((d, j) => (d ?? (j === 0 ? 'N' : `${name}_d${j}`))), shape: sym.shape }
    })
    return { inputs, outputs, layerCounts: this.layerCounts, parameters: this.parameters }
  }

  private walk (graph: KerasGraph, inputs: Sym[], path: string[]): Sym[] {
    const values = new Map<string, Sym>()
    graph.inputs.forEach((ref, i) => {
      const sym = inputs[i]
      if (sym === undefined) throw new ConvertError(`model "${graph.name}" expects ${graph.inputs.length} inputs, got ${inputs.length}`)
      values.set(refKey(ref), sym)
    })
    const pending: Array<{ layer: KerasLayer, call: number }> = []
    for (const layer of graph.layers) layer.calls.forEach((_, call) => pending.push({ layer, call }))
    while (pending.length > 0) {
      const before = pending.length
      for (let i = 0; i < pending.length;) {
        const { layer, call } = pending[i] as { layer: KerasLayer, call: number }
        const refs = layer.calls[call] as CallArg[]
        const args = refs.map((r) => (typeof r === 'number' ? { name: this.g.scalar(r), shape: [], cf: false } : values.get(refKey(r))))
        if (args.some((a) => a === undefined)) { i++; continue }
        pending.splice(i, 1)
        const outs = this.callLayer(layer, args as Sym[], path)
        outs.forEach((sym, index) => values.set(refKey({ layer: layer.name, node: call, index }), sym))
      }
      if (pending.length === before) {
        const stuck = pending[0] as { layer: KerasLayer, call: number }
        const missing = (stuck.layer.calls[stuck.call] as CallArg[]).find((r): r is TensorRef => typeof r !== 'number' && !values.has(refKey(r)))
        throw new ConvertError(`model "${graph.name}": layer "${stuck.layer.name}" reads "${missing?.layer}", which no layer of the model produces`)
      }
    }
    return graph.outputs.map((ref) => {
      const sym = values.get(refKey(ref))
      if (sym === undefined) throw new ConvertError(`model "${graph.name}": output "${ref.layer}" is never computed`)
      return sym
    })
  }

  private callLayer (layer: KerasLayer, args: Sym[], path: string[]): Sym[] {
    if (layer.inner !== undefined) {
      this.count(layer.className)
      return this.walk(layer.inner, args, [...path, layer.name])
    }
    const handler = lookupLayer(layer.className, layer.name)
    const layerPath = [...path, layer.name]
    const ctx = this.context(layer, handler, layerPath)
    const out = handler.convert(ctx, args)
    this.count(layer.className)
    return Array.isArray(out) ? out : [out]
  }

  private count (className: string): void {
    this.layerCounts[className] = (this.layerCounts[className] ?? 0) + 1
  }

  private context (layer: KerasLayer, handler: LayerHandler, path: string[]): LayerContext {
    const where = `layer "${path.join('/')}" (${layer.className})`
    const fail = (message: string): never => { throw new ConvertError(`${where}: ${message}`) }
    let stored: LayerWeights | undefined | null = null
    const load = () => {
      if (stored === null) stored = this.weights.lookup(path)
      return stored
    }
    // `a|b`: names a weight has had across Keras versions (DepthwiseConv2D's kernel).
    const find = (kind: string) => {
      const w = load()
      if (w === undefined) return undefined
      const byKind = w.byKind
      if (byKind !== undefined) return kind.split('|').map((k) => byKind.get(k)).find((v) => v !== undefined)
      // Every registered handler that reads weights declares their order, so the fallback is
      // unreachable; it keeps a handler without `weights` from crashing the walk.
      /* c8 ignore next */
      const order = handler.weights?.(layer.config) ?? []
      return w.ordered[order.indexOf(kind)]
    }
    return {
      g: this.g,
      className: layer.className,
      name: layer.name,
      config: layer.config,
      kerasMajor: this.kerasMajor,
      fail,
      weight: (kind, dims) => {
        const w = find(kind)
        if (w === undefined) fail(`weight "${kind.split('|')[0]}" is missing from the file (its architecture and weights do not match)`)
        const stored = w as NonNullable<typeof w>
        const fits = 'count' in dims
          ? stored.dims.reduce((a, b) => a * b, 1) === dims.count
          : stored.dims.length === dims.length && dims.every((d, i) => d === null || d === stored.dims[i])
        if (!fits) {
          const need = 'count' in dims ? `${dims.count} values` : `[${dims.map((d) => d ?? '?').join(', ')}]`
          fail(`weight "${kind}" has shape [${stored.dims.join(', ')}] but the layer needs ${need}`)
        }
        const data = stored.read()
        // A shared layer's weights count once.
        const key = `${path.join('/')}\u0000${kind}`
        if (!this.counted.has(key)) {
          this.counted.add(key)
          this.parameters += data.length
        }
        return data
      },
      cf: (t) => this.layouts.cf(t),
      keras: (t) => this.layouts.keras(t)
    }
  }
}
