import type { Activation } from '../models/manifest.js'

export interface Prediction {
  label: string
  confidence: number
}

export function softmax (logits: ArrayLike<number>): number[] {
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i])
  const exps = Array.from(logits, (x) => Math.exp(x - max)) // shifted by max: no overflow
  const sum = exps.reduce((a, b) => a + b, 0)
  return exps.map((e) => e / sum)
}

export function sigmoid (logits: ArrayLike<number>): number[] {
  return Array.from(logits, (x) => 1 / (1 + Math.exp(-x)))
}

// 'auto' (manifest-less models): outputs that already form a distribution are kept as they are.
function looksLikeProbabilities (values: ArrayLike<number>): boolean {
  let sum = 0
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (!(v >= 0 && v <= 1)) return false
    sum += v
  }
  return Math.abs(sum - 1) < 1e-3
}

export function activate (values: ArrayLike<number>, activation: Activation): number[] {
  switch (activation) {
    case 'softmax': return softmax(values)
    case 'sigmoid': return sigmoid(values)
    case 'none': return Array.from(values)
    case 'auto': return looksLikeProbabilities(values) ? Array.from(values) : softmax(values)
  }
}

/** Model output → every label with its confidence, highest first (ties keep label order). */
export function toPredictions (output: ArrayLike<number>, labels: readonly string[], activation: Activation): Prediction[] {
  if (output.length !== labels.length) {
    throw new RangeError(`the model produced ${output.length} values for ${labels.length} labels`)
  }
  const scores = activate(output, activation)
  return labels
    .map((label, i) => ({ label, confidence: scores[i] }))
    .sort((a, b) => b.confidence - a.confidence)
}
