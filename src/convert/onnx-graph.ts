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

export class OnnxGraph {
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
    if (this.nodes.some((n) => n.input?.includes(name) === true)) return
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
   * Encodes the graph. Initializers no node reads (weights replaced by folding) are dropped.
   */
  encode (o: { name: string, inputs: GraphIO[], outputs: GraphIO[], docString: string, producerVersion: string }): Uint8Array {
    const read = new Set(this.nodes.flatMap((n) => n.input ?? []))
    const valueInfo = (io: GraphIO) => ({
      name: io.name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: io.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } }
    })
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'shine-inference',
      producerVersion: o.producerVersion,
      docString: o.docString,
      graph: {
        name: o.name,
        node: this.nodes,
        initializer: [...this.initializers.values()].filter((t) => read.has(t.name as string)),
        input: o.inputs.map(valueInfo),
        output: o.outputs.map(valueInfo)
      }
    })
    // finish() returns a Uint8Array (a Buffer in Node) already: copying it would hold the model twice.
    return onnx.ModelProto.encode(model).finish()
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
