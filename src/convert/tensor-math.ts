// Weight rearrangements between Keras' and ONNX's layouts (pure).

/** Transposes a row-major tensor: output axis i is input axis perm[i]. */
export function permute (data: Float32Array, dims: readonly number[], perm: readonly number[]): Float32Array {
  const rank = dims.length
  const outDims = perm.map((p) => dims[p] as number)
  const inStrides = new Array<number>(rank)
  let s = 1
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s
    s *= dims[i] as number
  }
  const strides = perm.map((p) => inStrides[p] as number)
  const out = new Float32Array(data.length)
  const index = new Array<number>(rank).fill(0)
  let src = 0
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src] as number
    for (let a = rank - 1; a >= 0; a--) {
      index[a] = (index[a] as number) + 1
      src += strides[a] as number
      if ((index[a] as number) < (outDims[a] as number)) break
      src -= (strides[a] as number) * (outDims[a] as number)
      index[a] = 0
    }
  }
  return out
}

/** TensorFlow's SAME padding for one axis: the odd pixel goes at the end. */
export function samePads (size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const effective = (kernel - 1) * dilation + 1
  const out = Math.ceil(size / stride)
  const total = Math.max((out - 1) * stride + effective - size, 0)
  const before = Math.floor(total / 2)
  return [before, total - before]
}

/** Output size of a convolution or pooling window along one axis. */
export function windowOutput (size: number | null, kernel: number, stride: number, dilation: number, padding: string): number | null {
  if (size === null) return null
  if (padding === 'same') return Math.ceil(size / stride)
  if (padding === 'causal') return Math.ceil(size / stride)
  return Math.floor((size - ((kernel - 1) * dilation + 1)) / stride) + 1
}
