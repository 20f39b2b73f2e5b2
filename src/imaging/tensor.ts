export type Layout = 'NCHW' | 'NHWC'
export type Channels = 'RGB' | 'BGR'

export interface TensorSpec {
  layout: Layout
  width: number
  height: number
  mean: readonly [number, number, number]
  std: readonly [number, number, number]
  /** Channel order the model expects; mean and std are given in that order. Default RGB. */
  channels?: Channels
}

/** Model input dims for a batch of one, in the model's layout. */
export function inputDims (spec: TensorSpec): number[] {
  return spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3]
}

/**
 * Interleaved 8-bit RGB (what sharp's raw output gives) → float tensor: channels reordered when
 * the model wants BGR (Keras' caffe mode), pixels scaled to 0..1, then (x - mean) / std per
 * model channel. The buffer is fresh (not pooled) so it can be transferred
 * to a worker without a copy.
 */
export function toTensor (rgb: Uint8Array, spec: TensorSpec): Float32Array {
  const pixels = spec.width * spec.height
  if (rgb.length !== pixels * 3) {
    throw new RangeError(`expected ${pixels * 3} RGB bytes for ${spec.width}×${spec.height}, got ${rgb.length}`)
  }
  const out = new Float32Array(new ArrayBuffer(pixels * 3 * Float32Array.BYTES_PER_ELEMENT))
  // x/255/std - mean/std, folded into one multiply-add per value
  const scale = spec.std.map((s) => 1 / (255 * s))
  const shift = spec.mean.map((m, c) => -m / spec.std[c])
  const bgr = spec.channels === 'BGR'
  for (let c = 0; c < 3; c++) {
    const k = scale[c]
    const b = shift[c]
    // Model channel c reads RGB channel `from`: the same one, or its mirror for BGR.
    const from = bgr ? 2 - c : c
    if (spec.layout === 'NCHW') {
      const plane = c * pixels
      for (let i = 0; i < pixels; i++) out[plane + i] = rgb[i * 3 + from] * k + b
    } else {
      for (let i = 0; i < pixels; i++) out[i * 3 + c] = rgb[i * 3 + from] * k + b
    }
  }
  return out
}
