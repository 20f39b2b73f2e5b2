// Keras 2 and Keras 3 architecture JSON (model_config, config.json, TF.js modelTopology)
// normalised into one shape, so the walker and the layer functions never see the difference.
import { ConvertError } from './errors.js'

export interface TensorRef {
  layer: string
  node: number
  index: number
}

export type CallArg = TensorRef | number

export interface KerasLayer {
  className: string
  name: string
  config: Record<string, unknown>
  /**
   * One entry per call of the layer (a shared layer has several), listing its inputs. A number is
   * a constant operand: Keras 3 writes `x + 3.0` as an `Add` node with args [tensor, 3.0].
   */
  calls: CallArg[][]
  /** A nested Functional or Sequential model used as a layer. */
  inner?: KerasGraph
}

export interface KerasGraph {
  name: string
  /**
   * The model was built from an InputLayer, so Keras gave it a node of its own before any call:
   * tf.keras 2 numbers its calls from 1 in the outer config, and Keras 3 its outputs from 1.
   */
  ownNode: boolean
  layers: KerasLayer[]
  inputs: TensorRef[]
  outputs: TensorRef[]
}

type Json = Record<string, unknown>
interface Counter { n: number, kerasMajor: number }
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const MODEL_CLASSES = new Set(['Functional', 'Model', 'Sequential'])
// Refuses absurd configs before anything is allocated for them.
const MAX_LAYERS = 20000

function fail (message: string): never {
  throw new ConvertError(message)
}

function layerName (layer: Json): string {
  const name = layer.name ?? (isObject(layer.config) ? layer.config.name : undefined)
  return typeof name === 'string' && name !== '' ? name : fail(`a layer of class ${String(layer.class_name)} has no name`)
}

/** Keras 3 writes a keras tensor as {class_name: "__keras_tensor__", config: {keras_history}}. */
function collectKeras3Tensors (value: unknown, out: CallArg[]): void {
  if (typeof value === 'number') {
    out.push(value)
  } else if (Array.isArray(value)) {
    for (const v of value) collectKeras3Tensors(v, out)
  } else if (isObject(value)) {
    if (value.class_name === '__keras_tensor__' && isObject(value.config)) {
      const [layer, node, index] = value.config.keras_history as [string, number, number]
      out.push({ layer, node, index })
    } else {
      for (const v of Object.values(value)) collectKeras3Tensors(v, out)
    }
  }
}

/** Keras 2 writes a call as [[layer, node, tensor, kwargs], …]; Keras 3 as {args, kwargs}. */
function parseCall (call: unknown, owner: string): CallArg[] {
  if (isObject(call)) {
    const refs: CallArg[] = []
    collectKeras3Tensors(call.args, refs)
    return refs
  }
  if (Array.isArray(call)) {
    return call.map((entry) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') fail(`layer "${owner}": an inbound node is not in a Keras format this server reads`)
      if (isObject(entry[3]) && Object.keys(entry[3]).some((k) => k !== 'mask' && k !== 'training')) {
        fail(`layer "${owner}" is called with extra arguments (${Object.keys(entry[3]).join(', ')}), which Keras writes for TensorFlow operator layers; this server does not run those`)
      }
      return { layer: entry[0], node: Number(entry[1] ?? 0), index: Number(entry[2] ?? 0) }
    })
  }
  return fail(`layer "${owner}": an inbound node is not in a Keras format this server reads`)
}

/** input_layers/output_layers: one [name, node, index] or a list of them. */
function parseEnds (value: unknown, what: string, model: string): TensorRef[] {
  if (!Array.isArray(value) || value.length === 0) fail(`model "${model}" has no ${what}`)
  const list = typeof value[0] === 'string' ? [value] : value
  return list.map((v) => {
    if (!Array.isArray(v) || typeof v[0] !== 'string') fail(`model "${model}": ${what} are not in a Keras format this server reads`)
    return { layer: v[0], node: Number(v[1] ?? 0), index: Number(v[2] ?? 0) }
  })
}

function batchShape (config: Json): Array<number | null> | undefined {
  const shape = config.batch_shape ?? config.batch_input_shape
  return Array.isArray(shape) ? shape.map((d) => (typeof d === 'number' ? d : null)) : undefined
}

function parseFunctional (config: Json, counter: Counter): KerasGraph {
  const name = typeof config.name === 'string' ? config.name : 'model'
  const layers = config.layers
  if (!Array.isArray(layers)) fail(`model "${name}" has no layers list`)
  const parsed = layers.map((l) => {
    if (!isObject(l)) fail(`model "${name}": a layer entry is not an object`)
    const lname = layerName(l)
    const calls = Array.isArray(l.inbound_nodes) ? l.inbound_nodes.map((c) => parseCall(c, lname)) : []
    return parseLayer(l, calls, counter)
  })
  const graph = { name, ownNode: true, layers: parsed, inputs: parseEnds(config.input_layers, 'inputs', name), outputs: parseEnds(config.output_layers, 'outputs', name) }
  renumberNestedCalls(graph, counter.kerasMajor)
  return graph
}

/**
 * Makes every reference to a nested model's call 0-based. tf.keras 2 (and TF.js) count the nested
 * model's construction node everywhere (`_should_skip_first_node`); Keras 3 only in
 * input_layers/output_layers, and then only for Functional models.
 */
function renumberNestedCalls (graph: KerasGraph, kerasMajor: number): void {
  const nested = new Set(graph.layers.filter((l) => l.inner?.ownNode === true && (kerasMajor < 3 || l.className !== 'Sequential')).map((l) => l.name))
  const shift = (r: TensorRef) => { if (nested.has(r.layer) && r.node > 0) r.node-- }
  if (kerasMajor < 3) for (const l of graph.layers) for (const call of l.calls) for (const a of call) if (typeof a !== 'number') shift(a)
  graph.inputs.forEach(shift)
  graph.outputs.forEach(shift)
}

function parseSequential (config: Json, counter: Counter): KerasGraph {
  const name = typeof config.name === 'string' ? config.name : 'sequential'
  const list = Array.isArray(config) ? config : config.layers
  if (!Array.isArray(list) || list.length === 0) fail(`Sequential model "${name}" has no layers`)
  const layers: KerasLayer[] = []
  let previous: string
  const first = list[0] as Json
  if (first.class_name === 'InputLayer') {
    previous = layerName(first)
  } else {
    const shape = batchShape(isObject(first.config) ? first.config : {}) ?? batchShape({ batch_shape: config.build_input_shape })
    if (shape === undefined) fail(`Sequential model "${name}" does not record its input shape`)
    previous = `${name}_input`
    layers.push({ className: 'InputLayer', name: previous, config: { batch_shape: shape }, calls: [] })
  }
  for (const l of list) {
    if (!isObject(l)) fail(`model "${name}": a layer entry is not an object`)
    if (l.class_name === 'InputLayer') {
      if (layers.length === 0) layers.push(parseLayer(l, [], counter))
      continue
    }
    const layer = parseLayer(l, [[{ layer: previous, node: 0, index: 0 }]], counter)
    layers.push(layer)
    previous = layer.name
  }
  const input = layers[0] as KerasLayer
  return { name, ownNode: first.class_name === 'InputLayer', layers, inputs: [{ layer: input.name, node: 0, index: 0 }], outputs: [{ layer: previous, node: 0, index: 0 }] }
}

function parseLayer (l: Json, calls: CallArg[][], counter: Counter): KerasLayer {
  if (++counter.n > MAX_LAYERS) fail(`the model declares more than ${MAX_LAYERS} layers`)
  const className = typeof l.class_name === 'string' ? l.class_name : fail('a layer has no class_name')
  const name = layerName(l)
  const config = isObject(l.config) ? l.config : {}
  const layer: KerasLayer = { className, name, config, calls }
  if (MODEL_CLASSES.has(className)) layer.inner = parseModelConfig(l, counter.kerasMajor, counter)
  return layer
}

/** The top-level {class_name, config} of a saved model. */
export function parseModelConfig (root: unknown, kerasMajor: number, counter: Counter = { n: 0, kerasMajor }): KerasGraph {
  if (!isObject(root) || typeof root.class_name !== 'string') fail('the model architecture is not a Keras model config (no class_name)')
  const config = root.config
  if (root.class_name === 'Sequential') return parseSequential(isObject(config) || Array.isArray(config) ? config as Json : {}, counter)
  if (root.class_name === 'Functional' || root.class_name === 'Model') {
    if (!isObject(config)) fail(`model "${root.class_name}" has no config`)
    return parseFunctional(config, counter)
  }
  return fail(`the file holds a ${root.class_name}, not a Sequential or Functional model: subclassed models carry Python code and cannot be loaded; save a Functional or Sequential model`)
}

export { batchShape, isObject }
