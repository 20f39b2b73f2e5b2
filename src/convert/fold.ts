// Folds per-channel Mul/Add constants (BatchNormalization at inference, emitted as x·s + t on the
// channel axis) into the Conv before them: W'[o] = W[o]·s[o], B'[o] = B[o]·s[o] + t[o]. Keras'
// BatchNormalization is affine once training is over, so this is exact up to float rounding.
import type { INodeProto, OnnxGraph } from './onnx-graph.js'

/** The per-channel vector of a [C,1,…] or [1,C,1,…] constant, or undefined. */
function channelVector (g: OnnxGraph, name: string, channels: number): Float32Array | undefined {
  const c = g.constantValue(name)
  if (c === undefined) return undefined
  const dims = c.dims[0] === 1 && c.dims.length > 1 ? c.dims.slice(1) : c.dims
  if (dims[0] !== channels || dims.slice(1).some((d) => d !== 1)) return undefined
  return c.data
}

export function foldBatchNorm (g: OnnxGraph): number {
  const nodes = g.nodeList()
  const consumers = new Map<string, INodeProto[]>()
  for (const n of nodes) for (const i of n.input as string[]) consumers.set(i, [...(consumers.get(i) ?? []), n])
  const gone = new Set<INodeProto>()
  let folded = 0
  for (const conv of nodes) {
    if (conv.opType !== 'Conv') continue
    const [x, wName, bName] = conv.input as string[]
    const w = g.constantValue(wName as string)
    const b = bName === undefined ? undefined : g.constantValue(bName)
    if (w === undefined || (bName !== undefined && b === undefined)) continue
    const channels = w.dims[0] as number
    const perChannel = w.data.length / channels
    let weights: Float32Array | undefined
    let bias: Float32Array | undefined
    for (;;) {
      const out = (conv.output as string[])[0] as string
      const next = consumers.get(out)
      if (next?.length !== 1) break
      const n = next[0] as INodeProto
      if (n.opType !== 'Mul' && n.opType !== 'Add') break
      const other = (n.input as string[]).find((i) => i !== out)
      if ((n.input as string[]).length !== 2 || other === undefined) break
      const v = channelVector(g, other, channels)
      if (v === undefined) break
      weights ??= Float32Array.from(w.data)
      bias ??= b === undefined ? new Float32Array(channels) : Float32Array.from(b.data)
      for (let o = 0; o < channels; o++) {
        if (n.opType === 'Mul') {
          const s = v[o] as number
          for (let k = o * perChannel; k < (o + 1) * perChannel; k++) weights[k] = (weights[k] as number) * s
          bias[o] = (bias[o] as number) * s
        } else {
          bias[o] = (bias[o] as number) + (v[o] as number)
        }
      }
      gone.add(n)
      conv.output = n.output
      consumers.set((n.output as string[])[0] as string, consumers.get((n.output as string[])[0] as string) ?? [])
      folded++
    }
    if (weights !== undefined && bias !== undefined) {
      conv.input = [x as string, g.constant(`${wName}_folded`, w.dims, weights), g.constant(`${bName ?? wName}_bias_folded`, [channels], bias)]
      // The unfolded weights go now rather than at encode: a 100 MB model must not be held twice.
      g.release(wName as string)
      if (bName !== undefined) g.release(bName)
    }
  }
  g.removeNodes(gone)
  return folded
}
