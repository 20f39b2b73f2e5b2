// What a layer function sees: its config, its weights, the graph, and the layout helpers.
import type { OnnxGraph } from './onnx-graph.js'

export type Shape = Array<number | null>

/**
 * A Keras tensor in the ONNX graph. `shape` is always in Keras' own (channels-last) order; `cf`
 * says the ONNX tensor holds it channels-first ([N, C, …spatial]), which is how convolutions and
 * pooling run. Layouts change only where a layer needs the other one (README "Keras models").
 */
export interface Sym {
  name: string
  shape: Shape
  cf: boolean
}

export interface LayerContext {
  readonly g: OnnxGraph
  readonly className: string
  readonly name: string
  readonly config: Readonly<Record<string, unknown>>
  /** 2 or 3: some built-ins changed meaning between them (hard_sigmoid). */
  readonly kerasMajor: number
  /**
   * A stored weight, checked against `dims` (`null` entries match any size; `count` checks only
   * the number of values); a missing or mis-shaped one is an error naming the layer.
   */
  weight: (kind: string, dims: ReadonlyArray<number | null> | { count: number }) => Float32Array
  /** The ONNX name of `t` channels-first (rank ≥ 3) or as it is. */
  cf: (t: Sym) => string
  /** The ONNX name of `t` in Keras' order. */
  keras: (t: Sym) => string
  /** An error naming this layer. */
  fail: (message: string) => never
}

export type LayerFn = (ctx: LayerContext, inputs: Sym[]) => Sym | Sym[]

export interface LayerHandler {
  convert: LayerFn
  /** The variables' order in a `.keras` file (Keras 3 `layer.variables`), for this config. */
  weights?: (config: Readonly<Record<string, unknown>>) => string[]
}

export const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback)
export const bool = (v: unknown, fallback: boolean): boolean => (typeof v === 'boolean' ? v : fallback)
export const str = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback)

/** A Keras int-or-tuple argument (kernel_size, strides, …) as `n` numbers. */
export function tuple (v: unknown, n: number, fallback: number): number[] {
  if (typeof v === 'number') return Array<number>(n).fill(v)
  if (Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number')) return v as number[]
  return Array<number>(n).fill(fallback)
}

/** Keras' negative axis for a tensor of `rank`. */
export const positiveAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis)

/** Where Keras axis `axis` (≥ 0) of a rank-`rank` tensor lives in its channels-first ONNX tensor. */
export function cfAxis (axis: number, rank: number): number {
  if (rank < 3 || axis === 0) return axis
  return axis === rank - 1 ? 1 : axis + 1
}

export const isChannelsFirstConfig = (config: Readonly<Record<string, unknown>>): boolean => config.data_format === 'channels_first'
