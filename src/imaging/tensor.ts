export type Layout = 'NCHW' | 'NHWC'

export interface TensorSpec {
  layout: Layout
  width: number
  height: number
  mean: readonly [number, number, number]
  std: readonly [number, number, number]
}

/** Model input dims for a batch of one, in the model's layout. */
export function inputDims (spec: TensorSpec): number[] {
  return spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3]
}

/**
 * Interleaved 8-bit RGB (what sharp's raw output gives) → float tensor: pixels scaled to 0..1,
 * then (x - mean) / std per channel. The buffer is fresh (not pooled) so it can be transferred
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
  for (let c = 0; c < 3; c++) {
    const k = scale[c]
    const b = shift[c]
    if (spec.layout === 'NCHW') {
      const plane = c * pixels
      for (let i = 0; i < pixels; i++) out[plane + i] = rgb[i * 3 + c] * k + b
    } else {
      for (let i = c; i < pixels * 3; i += 3) out[i] = rgb[i] * k + b
    }
  }
  return out
}
