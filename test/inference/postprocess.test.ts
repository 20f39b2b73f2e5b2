import t from 'tap'
import { activate, sigmoid, softmax, toPredictions } from '../../src/inference/postprocess.js'

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-6)

t.test('softmax sums to one, keeps order and does not overflow', async (t) => {
  const p = softmax([1, 2, 3])
  t.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-12)
  t.ok(p[2]! > p[1]! && p[1]! > p[0]!)
  t.ok(close(softmax([1000, 1000]), [0.5, 0.5]), 'large logits')
  t.ok(close(softmax(Float32Array.from([0, Math.log(3)])), [0.25, 0.75]))
})

t.test('sigmoid is per label', async (t) => {
  t.ok(close(sigmoid([0, 100, -100]), [0.5, 1, 0]))
})

t.test('activation choice', async (t) => {
  t.same(activate([0.2, 0.9], 'none'), [0.2, 0.9])
  t.ok(close(activate([0, 0], 'sigmoid'), [0.5, 0.5]))
  t.ok(close(activate([0, Math.log(3)], 'softmax'), [0.25, 0.75]))
  t.same(activate([0.25, 0.75], 'auto'), [0.25, 0.75], 'auto keeps a distribution')
  t.ok(close(activate([0, Math.log(3)], 'auto'), [0.25, 0.75]), 'auto softmaxes logits')
  t.ok(close(activate([0.5, 0.9], 'auto'), softmax([0.5, 0.9])), 'auto: in range but not summing to 1')
  t.ok(close(activate([-0.5, 1.5], 'auto'), softmax([-0.5, 1.5])), 'auto: out of range')
})

t.test('predictions list every label, highest first, ties in label order', async (t) => {
  const out = toPredictions(Float32Array.from([0.1, 0.6, 0.1, 0.2]), ['acne', 'rosacea', 'eczema', 'healthy'], 'none')
  t.same(out.map((p) => p.label), ['rosacea', 'healthy', 'acne', 'eczema'])
  t.ok(Math.abs(out[0]!.confidence - 0.6) < 1e-6)
  t.throws(() => toPredictions([1, 2], ['a'], 'none'), RangeError)
})
