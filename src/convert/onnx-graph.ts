// The ONNX graph the converter writes: named tensors, deduplicated constants, nodes. Layer
// functions use only this class, never protobuf types (STYLE.md, "a converter that reads like a table").
import { createHash } from 'node:crypto'
import onnxProto from 'onnx-proto'
import type { onnx as OnnxTypes } from 'onnx-proto'

// onnx-proto is CommonJS assigning `module.exports = $root`: only the default import is reliable in ESM.
const { onnx } = onnxProto

type INodeProto = OnnxTypes.INodeProto
type ITensorProto = OnnxTypes.ITensorProto
type IAttributeProto = OnnxTypes.IAttributeProto

// 17: LayerNormalization, HardSwish and Reduce* with an `axes` attribute; ONNX Runtime ≥ 1.14.
export const OPSET = 17
const IR_VERSION = 8
const { FLOAT, INT64 } = onnx.TensorProto.DataType
const A = onnx.AttributeProto.AttributeType

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] }
export type Dim = number | string

function attribute (name: string, v: AttrValue): IAttributeProto {
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) }
  if (typeof v === 'number') return { name, type: A.INT, i: v }
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v }
  if ('float' in v) return { name, type: A.FLOAT, f: v.float }
  return { name, type: A.FLOATS, floats: v.floats }
}

/** A float constant: its values (row-major) and dims. */
export interface Constant {
  dims: number[]
  data: Float32Array
}

export interface GraphIO {
  name: string
  dims: Dim[]
}

export type { INodeProto }

export interface EncodeOptions { name: string, inputs: GraphIO[], outputs: GraphIO[], docString: string, producerVersion: string }

// Field numbers of onnx.proto's ModelProto.graph, GraphProto.initializer and TensorProto.raw_data.
const MODEL_GRAPH = 7
const GRAPH_INITIALIZER = 5
const TENSOR_RAW_DATA = 9

/** A length-delimited field's tag and length (protobuf wire type 2, lengths as base-128 varints). */
export function lengthDelimited (field: number, length: number): Uint8Array {
  const bytes = [(field << 3) | 2]
  let n = length
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  bytes.push(n)
  return Uint8Array.from(bytes)
}

export class OnnxGraph {
  // Built only by nodeN/nodeAs (and fold.ts's rewiring), so every node has an input list.
  private readonly nodes: INodeProto[] = []
  private readonly initializers = new Map<string, ITensorProto>()
  private readonly floats = new Map<string, Constant>()
  private readonly byContent = new Map<string, string>()
  private readonly used = new Set<string>()

  /** A fresh tensor name based on `hint`. */
  unique (hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_')
    let name = base
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`
    this.used.add(name)
    return name
  }

  reserve (name: string): void {
    this.used.add(name)
  }

  private addInitializer (hint: string, key: string, make: (name: string) => ITensorProto): string {
    const existing = this.byContent.get(key)
    if (existing !== undefined) return existing
    const name = this.unique(hint)
    this.initializers.set(name, make(name))
    this.byContent.set(key, name)
    return name
  }

  /** A float32 initializer; identical values and dims share one tensor. */
  constant (hint: string, dims: number[], data: Float32Array): string {
    const expected = dims.reduce((a, b) => a * b, 1)
    if (data.length !== expected) throw new Error(`constant ${hint}: ${data.length} values for [${dims.join(',')}]`)
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    const key = `f${dims.join(',')}:${createHash('sha256').update(bytes).digest('hex')}`
    const name = this.addInitializer(hint, key, (n) => ({ name: n, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }))
    this.floats.set(name, { dims, data })
    return name
  }

  scalar (value: number): string {
    return this.constant(`c_${value}`, [], Float32Array.of(value))
  }

  /** An int64 initializer (shapes, axes, pads). */
  int64 (values: readonly number[], hint = 'i64'): string {
    return this.addInitializer(hint, `i${values.join(',')}`, (n) => ({ name: n, dims: [values.length], dataType: INT64, int64Data: [...values] }))
  }

  /** A 0-D int64 initializer (CumSum's axis). */
  int64Scalar (value: number): string {
    return this.addInitializer('axis', `s${value}`, (n) => ({ name: n, dims: [], dataType: INT64, int64Data: [value] }))
  }

  /** Forgets a float initializer that folding replaced, so its memory goes before encode. */
  release (name: string): void {
    if (this.nodes.some((n) => (n.input as string[]).includes(name))) return
    this.initializers.delete(name)
    this.floats.delete(name)
    for (const [key, value] of this.byContent) if (value === name) this.byContent.delete(key)
  }

  /** The value of a float initializer, when `name` is one. */
  constantValue (name: string): Constant | undefined {
    return this.floats.get(name)
  }

  /** Adds a node; returns its output names (`outputs` of them). */
  nodeN (op: string, inputs: string[], outputs: number, attrs: Record<string, AttrValue> = {}, hint = op): string[] {
    const names = Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? hint : `${hint}_${i}`))
    const n: INodeProto = {
      opType: op,
      name: names[0],
      input: inputs,
      output: names,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v))
    }
    this.nodes.push(n)
    return names
  }

  /** A node whose single output is exactly `name` (reserved beforehand, e.g. a graph output). */
  nodeAs (op: string, inputs: string[], name: string): string {
    const n: INodeProto = { opType: op, name, input: inputs, output: [name], attribute: [] }
    this.nodes.push(n)
    return name
  }

  node (op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = op): string {
    return this.nodeN(op, inputs, 1, attrs, hint)[0] as string
  }

  /**
   * Encodes the graph as the pieces of one ONNX file, in order: the model, the graph without its
   * initializers, then each initializer with its float data as a view of the weights (not a copy),
   * so the file is written without holding the model twice (a 119 MB model peaked at 3.85× its
   * size with one encoded buffer). Protobuf lets a message's fields come in any order.
   * Initializers no node reads (weights replaced by folding) are dropped.
   */
  encodeParts (o: EncodeOptions): Uint8Array[] {
    const read = new Set(this.nodes.flatMap((n) => n.input as string[]))
    const valueInfo = (io: GraphIO) => ({
      name: io.name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: io.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } }
    })
    const model = onnx.ModelProto.encode(onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'shine-inference',
      producerVersion: o.producerVersion,
      docString: o.docString
    })).finish()
    const graph = onnx.GraphProto.encode(onnx.GraphProto.create({
      name: o.name,
      node: this.nodes,
      input: o.inputs.map(valueInfo),
      output: o.outputs.map(valueInfo)
    })).finish()
    const tensors: Uint8Array[] = []
    for (const t of this.initializers.values()) {
      if (!read.has(t.name as string)) continue
      const raw = t.rawData ?? undefined
      if (raw === undefined) {
        const whole = onnx.TensorProto.encode(t).finish()
        tensors.push(lengthDelimited(GRAPH_INITIALIZER, whole.length), whole)
        continue
      }
      const head = onnx.TensorProto.encode({ ...t, rawData: undefined }).finish()
      const rawField = lengthDelimited(TENSOR_RAW_DATA, raw.length)
      tensors.push(lengthDelimited(GRAPH_INITIALIZER, head.length + rawField.length + raw.length), head, rawField, raw)
    }
    const graphBytes = graph.length + tensors.reduce((n, p) => n + p.length, 0)
    return [model, lengthDelimited(MODEL_GRAPH, graphBytes), graph, ...tensors]
  }

  /** The whole file in one buffer (tests and small graphs; the converter writes encodeParts). */
  encode (o: EncodeOptions): Uint8Array {
    return Buffer.concat(this.encodeParts(o))
  }

  /** The nodes in order, for graph passes (fold.ts). */
  nodeList (): readonly INodeProto[] {
    return this.nodes
  }

  removeNodes (gone: ReadonlySet<INodeProto>): void {
    const kept = this.nodes.filter((n) => !gone.has(n))
    this.nodes.length = 0
    this.nodes.push(...kept)
  }

  /** Node counts by op type (the CLI summary). */
  opCounts (): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const n of this.nodes) counts[n.opType as string] = (counts[n.opType as string] ?? 0) + 1
    return counts
  }
}
