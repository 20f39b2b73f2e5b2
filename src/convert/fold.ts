// Folds the scale and shift of an inference-time BatchNormalization (emitted as Mul then Add on
// the channel axis) into the convolution before it: one Conv instead of three nodes per block.
import type { OnnxGraph } from './onnx-graph.js'

export function foldBatchNorm (g: OnnxGraph): number {
  return g.foldChannelAffine()
}
