// A reference port of Pillow's Image.resize(size, BILINEAR) for 8-bit RGB (libImaging/Resample.c):
// a triangle filter whose support widens with the downscale factor, horizontal pass first, with
// 8-bit rounding between passes. Used to measure how close our sharp pipeline is to the Flask
// service it replaces, which resized with PIL.

function coefficients (inSize: number, outSize: number): { bounds: Int32Array, weights: Float64Array[] } {
  const scale = inSize / outSize
  const filterScale = Math.max(scale, 1)
  const support = filterScale // bilinear support is 1.0
  const bounds = new Int32Array(outSize * 2)
  const weights: Float64Array[] = []
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale
    const min = Math.max(0, Math.trunc(center - support + 0.5))
    const max = Math.min(inSize, Math.trunc(center + support + 0.5))
    const w = new Float64Array(max - min)
    let total = 0
    for (let i = 0; i < w.length; i++) {
      const d = Math.abs((i + min - center + 0.5) / filterScale)
      w[i] = d < 1 ? 1 - d : 0
      total += w[i]!
    }
    for (let i = 0; i < w.length; i++) w[i]! /= total || 1
    bounds[x * 2] = min
    bounds[x * 2 + 1] = max - min
    weights.push(w)
  }
  return { bounds, weights }
}

const clip8 = (v: number) => Math.min(255, Math.max(0, Math.round(v)))

export function pilBilinear (rgb: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  const h = coefficients(width, outW)
  const mid = new Uint8Array(outW * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      const min = h.bounds[x * 2]!
      const w = h.weights[x]!
      for (let c = 0; c < 3; c++) {
        let acc = 0
        for (let i = 0; i < w.length; i++) acc += rgb[(y * width + min + i) * 3 + c]! * w[i]!
        mid[(y * outW + x) * 3 + c] = clip8(acc)
      }
    }
  }
  const v = coefficients(height, outH)
  const out = new Uint8Array(outW * outH * 3)
  for (let y = 0; y < outH; y++) {
    const min = v.bounds[y * 2]!
    const w = v.weights[y]!
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0
        for (let i = 0; i < w.length; i++) acc += mid[((min + i) * outW + x) * 3 + c]! * w[i]!
        out[(y * outW + x) * 3 + c] = clip8(acc)
      }
    }
  }
  return out
}
