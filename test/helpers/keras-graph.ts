// Tiny Keras configs converted in memory (no file): parse → walk → fold → encode, then run in
// ONNX Runtime. For checking one layer's numbers against values worked out by hand.
import * as ort from 'onnxruntime-node'
import { foldBatchNorm } from '../../src/convert/fold.js'
import { parseModelConfig } from '../../src/convert/keras-model.js'
import { OnnxGraph } from '../../src/convert/onnx-graph.js'
import { GraphWalker, type WalkResult } from '../../src/convert/walk.js'
import type { StoredWeight, WeightSource } from '../../src/convert/weights.js'

export interface W { dims: number[], data: number[] }
/** Weights by layer name, then by kind (`kernel`, `bias`…), in the order a `.keras` file keeps them. */
export type Weights = Record<string, Record<string, W>>

export interface LayerSpec { class_name: string, name?: string, config?: Record<string, unknown> }

const stored = (w: W): StoredWeight => ({ dims: w.dims, read: () => Float32Array.from(w.data) })

/**
 * A WeightSource over `weights`, looked up by the layer's own name: by kind as HDF5 and TF.js
 * files name them, or (`ordered`) only in variable order, as `.keras` files keep them.
 */
export function weightSource (weights: Weights, ordered = false): WeightSource {
  return {
    lookup (path) {
      const kinds = weights[path.at(-1) as string]
      if (kinds === undefined) return undefined
      const list = Object.values(kinds).map(stored)
      return ordered ? { ordered: list } : { byKind: new Map(Object.entries(kinds).map(([k, w]) => [k, stored(w)])), ordered: list }
    },
    close: () => {}
  }
}

/** A Keras 3 Sequential config: an InputLayer `in` of batch shape [null, ...shape], then `layers` (named l0, l1…). */
export function sequential (shape: Array<number | null>, layers: LayerSpec[]): Record<string, unknown> {
  return {
    class_name: 'Sequential',
    config: {
      name: 'seq',
      layers: [
        { class_name: 'InputLayer', config: { name: 'in', batch_shape: [null, ...shape] } },
        ...layers.map((l, i) => ({ class_name: l.class_name, config: { name: l.name ?? `l${i}`, ...l.config } }))
      ]
    }
  }
}

export interface Converted { onnx: Uint8Array, result: WalkResult, g: OnnxGraph }

export function convertConfig (config: unknown, weights: Weights = {}, kerasMajor = 3, ordered = false): Converted {
  const graph = parseModelConfig(config, kerasMajor)
  const g = new OnnxGraph()
  const result = new GraphWalker(g, weightSource(weights, ordered), kerasMajor).walkTop(graph)
  foldBatchNorm(g)
  const onnx = g.encode({ name: graph.name, inputs: result.inputs, outputs: result.outputs, docString: 'test', producerVersion: 'test' })
  return { onnx, result, g }
}

export interface Tensor { dims: readonly number[], data: number[] }

/** Runs `onnx` on `inputs` (in graph input order); outputs in graph order, as plain numbers. */
export async function runModel (onnx: Uint8Array, inputs: Array<{ shape: number[], data: number[] }>): Promise<Tensor[]> {
  const session = await ort.InferenceSession.create(onnx)
  try {
    const feeds: Record<string, ort.Tensor> = {}
    session.inputNames.forEach((name, i) => {
      const x = inputs[i] as { shape: number[], data: number[] }
      feeds[name] = new ort.Tensor('float32', Float32Array.from(x.data), x.shape)
    })
    const out = await session.run(feeds)
    return session.outputNames.map((n) => ({ dims: (out[n] as ort.Tensor).dims, data: Array.from((out[n] as ort.Tensor).data as Float32Array) }))
  } finally {
    await session.release()
  }
}

/** Converts a Sequential of `layers` and runs it on one input of `shape` (batch included). */
export async function runLayers (input: { shape: number[], data: number[] }, layers: LayerSpec[], weights: Weights = {}, kerasMajor = 3): Promise<Tensor> {
  const { onnx } = convertConfig(sequential(input.shape.slice(1), layers), weights, kerasMajor)
  return (await runModel(onnx, [input]))[0] as Tensor
}

/** The values rounded to 5 decimals, so float32 results compare with t.same against hand-computed ones. */
export const round = (values: readonly number[]): number[] => values.map((v) => Math.round(v * 1e5) / 1e5 + 0)

export const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)
