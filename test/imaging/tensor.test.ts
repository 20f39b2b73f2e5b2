import t from 'tap'
import { inputDims, toTensor, type TensorSpec } from '../../src/imaging/tensor.js'

// A 2×2 image, interleaved RGB: (row 0) red, green; (row 1) blue, white
const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
const plain: TensorSpec = { layout: 'NCHW', width: 2, height: 2, mean: [0, 0, 0], std: [1, 1, 1] }

t.test('NCHW puts each channel in its own plane, scaled to 0..1', async (t) => {
  t.same(Array.from(toTensor(rgb, plain)), [1, 0, 0, 1, /* G */ 0, 1, 0, 1, /* B */ 0, 0, 1, 1])
  t.same(inputDims(plain), [1, 3, 2, 2])
})

t.test('NHWC keeps pixels interleaved', async (t) => {
  const spec: TensorSpec = { ...plain, layout: 'NHWC' }
  t.same(Array.from(toTensor(rgb, spec)), [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])
  t.same(inputDims({ ...spec, width: 3 }), [1, 2, 3, 3])
})

t.test('mean and std apply per channel', async (t) => {
  const spec: TensorSpec = { ...plain, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] }
  const out = Array.from(toTensor(rgb, spec))
  const expected = [
    (1 - 0.5) / 0.5, (0 - 0.5) / 0.5, (0 - 0.5) / 0.5, (1 - 0.5) / 0.5,
    (0 - 0.25) / 0.25, (1 - 0.25) / 0.25, (0 - 0.25) / 0.25, (1 - 0.25) / 0.25,
    0, 0, 0.5, 0.5
  ]
  out.forEach((v, i) => t.ok(Math.abs(v - expected[i]!) < 1e-6, `value ${i}: ${v} ≈ ${expected[i]}`))
})

t.test('a non-rectangular spec in NHWC with mean/std', async (t) => {
  // 3×1: grey 51, 102, 204 → 0.2, 0.4, 0.8 before normalisation
  const grey = Uint8Array.from([51, 51, 51, 102, 102, 102, 204, 204, 204])
  const spec: TensorSpec = { layout: 'NHWC', width: 3, height: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
  const out = toTensor(grey, spec)
  for (let p = 0; p < 3; p++) {
    for (let c = 0; c < 3; c++) {
      const want = ([0.2, 0.4, 0.8][p]! - spec.mean[c]) / spec.std[c]
      t.ok(Math.abs(out[p * 3 + c]! - want) < 1e-5, `pixel ${p} channel ${c}`)
    }
  }
})

t.test('the buffer is its own (transferable without a copy) and sizes are checked', async (t) => {
  const out = toTensor(rgb, plain)
  t.equal(out.byteOffset, 0)
  t.equal(out.buffer.byteLength, 12 * 4)
  t.throws(() => toTensor(rgb.subarray(3), plain), RangeError)
})

t.test('BGR (Keras caffe mode) swaps red and blue; mean and std are in the model\'s order', async (t) => {
  const bgr: TensorSpec = { ...plain, channels: 'BGR' }
  // planes B, G, R: red pixel → R plane, blue pixel → B plane
  t.same(Array.from(toTensor(rgb, bgr)), [0, 0, 1, 1, /* G */ 0, 1, 0, 1, /* R */ 1, 0, 0, 1])
  t.same(Array.from(toTensor(rgb, { ...bgr, layout: 'NHWC' })), [0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1])
  t.same(Array.from(toTensor(rgb, { ...plain, channels: 'RGB' })), Array.from(toTensor(rgb, plain)), 'RGB is the default')
  // caffe preset: x·255 − mean(BGR) — mean/255 and std 1/255 after the 0..1 scaling
  const caffe: TensorSpec = { ...bgr, layout: 'NHWC', mean: [103.939 / 255, 116.779 / 255, 123.68 / 255], std: [1 / 255, 1 / 255, 1 / 255] }
  const out = toTensor(rgb, caffe)
  const want = [0 - 103.939, 0 - 116.779, 255 - 123.68] // the red pixel, as B, G, R
  want.forEach((v, c) => t.ok(Math.abs(out[c]! - v) < 1e-3, `caffe channel ${c}: ${out[c]} ≈ ${v}`))
})
