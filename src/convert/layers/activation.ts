// Keras' built-in activations (as `activation=` strings and as layers), one ONNX expression each.
import type { LayerContext, LayerHandler, Sym } from '../layer-api.js'
import { cfAxis, num, positiveAxis } from '../layer-api.js'
import type { OnnxGraph } from '../onnx-graph.js'

type Expr = (g: OnnxGraph, x: string, ctx: LayerContext, t: Sym) => string

const f = (v: number) => ({ float: v })
const op = (name: string, attrs: Record<string, number | { float: number }> = {}): Expr => (g, x) => g.node(name, [x], attrs)
const mul = (g: OnnxGraph, a: string, b: string) => g.node('Mul', [a, b])

// SELU's constants, from Keras (and the paper).
const SELU_ALPHA = 1.6732632423543772
const SELU_SCALE = 1.0507009873554805

/** The axis Keras' softmax uses (the last), where it lives in the ONNX tensor. */
const lastAxis = (t: Sym) => (t.cf ? cfAxis(t.shape.length - 1, t.shape.length) : t.shape.length - 1)

// Keras' `activation="gelu"` is the exact form (approximate=False): 0.5·x·(1 + erf(x/√2)).
const gelu: Expr = (g, x) => {
  const erf = g.node('Erf', [mul(g, x, g.scalar(Math.SQRT1_2))])
  return mul(g, mul(g, x, g.scalar(0.5)), g.node('Add', [erf, g.scalar(1)]))
}

const relu6: Expr = (g, x) => g.node('Clip', [x, g.scalar(0), g.scalar(6)])
const silu: Expr = (g, x) => mul(g, x, g.node('Sigmoid', [x]))
// Keras 2's hard_sigmoid is clip(0.2·x + 0.5); Keras 3's is relu6(x + 3) / 6.
const hardSigmoid: Expr = (g, x, ctx) => g.node('HardSigmoid', [x], ctx.kerasMajor >= 3 ? { alpha: f(1 / 6), beta: f(0.5) } : { alpha: f(0.2), beta: f(0.5) })
const softmax: Expr = (g, x, _ctx, t) => g.node('Softmax', [x], { axis: lastAxis(t) })

export const ACTIVATIONS: Readonly<Record<string, Expr>> = {
  linear: (_g, x) => x,
  relu: op('Relu'),
  relu6,
  sigmoid: op('Sigmoid'),
  tanh: op('Tanh'),
  softmax,
  log_softmax: (g, x, _ctx, t) => g.node('LogSoftmax', [x], { axis: lastAxis(t) }),
  elu: op('Elu', { alpha: f(1) }),
  selu: op('Selu', { alpha: f(SELU_ALPHA), gamma: f(SELU_SCALE) }),
  celu: op('Celu', { alpha: f(1) }),
  softplus: op('Softplus'),
  softsign: op('Softsign'),
  swish: silu,
  silu,
  gelu,
  exponential: op('Exp'),
  hard_sigmoid: hardSigmoid,
  hard_swish: (g, x, ctx, t) => mul(g, x, hardSigmoid(g, x, ctx, t)),
  hard_silu: (g, x, ctx, t) => mul(g, x, hardSigmoid(g, x, ctx, t)),
  leaky_relu: op('LeakyRelu', { alpha: f(0.2) }),
  mish: (g, x) => mul(g, x, g.node('Tanh', [g.node('Softplus', [x])])),
  log_sigmoid: (g, x) => g.node('Neg', [g.node('Softplus', [g.node('Neg', [x])])]),
  hard_tanh: (g, x) => g.node('Clip', [x, g.scalar(-1), g.scalar(1)]),
  tanh_shrink: (g, x) => g.node('Sub', [x, g.node('Tanh', [x])]),
  soft_shrink: op('Shrink', { lambd: f(0.5), bias: f(0.5) }),
  hard_shrink: op('Shrink', { lambd: f(0.5), bias: f(0) }),
  sparse_sigmoid: (g, x) => g.node('Clip', [mul(g, g.node('Add', [x, g.scalar(1)]), g.scalar(0.5)), g.scalar(0), g.scalar(1)]),
  // 0 below −1, x above 1, (x + 1)²/4 between
  sparse_plus: (g, x) => {
    const mid = mul(g, g.node('Pow', [g.node('Add', [x, g.scalar(1)]), g.scalar(2)]), g.scalar(0.25))
    const upper = g.node('Where', [g.node('GreaterOrEqual', [x, g.scalar(1)]), x, mid])
    return g.node('Where', [g.node('LessOrEqual', [x, g.scalar(-1)]), g.scalar(0), upper])
  },
  glu: (g, x, ctx, t) => {
    const axis = lastAxis(t)
    const size = t.shape.at(-1)
    if (typeof size !== 'number' || size % 2 !== 0) ctx.fail('glu needs an even, known size on the last axis')
    const [a, b] = g.nodeN('Split', [x, g.int64([(size as number) / 2, (size as number) / 2])], 2, { axis })
    return mul(g, a as string, g.node('Sigmoid', [b as string]))
  },
  sparsemax: (g, x, ctx, t) => sparsemax(g, x, ctx, t),
  squareplus: (g, x) => mul(g, g.node('Add', [x, g.node('Sqrt', [g.node('Add', [mul(g, x, x), g.scalar(4)])])]), g.scalar(0.5))
}

/**
 * Sparsemax along the last axis as Keras 3.15 computes it: sort descending, support where
 * 1 + k·z₍ₖ₎ > Σⱼ≤ₖ z₍ⱼ₎, τ from the support, output max(z − τ, 0).
 */
function sparsemax (g: OnnxGraph, x: string, ctx: LayerContext, t: Sym): string {
  const axis = lastAxis(t)
  const size = t.shape.at(-1)
  if (typeof size !== 'number') ctx.fail('sparsemax needs a known size on the last axis')
  const [sorted] = g.nodeN('TopK', [x, g.int64([size as number])], 2, { axis, largest: 1, sorted: 1 })
  const cumsum = g.node('CumSum', [sorted as string, g.int64Scalar(axis)])
  const shape = Array<number>(t.shape.length).fill(1)
  shape[axis] = size as number
  const ks = g.constant('sparsemax_k', shape, Float32Array.from({ length: size as number }, (_, i) => i + 1))
  const support = g.node('Cast', [g.node('Greater', [g.node('Add', [mul(g, ks, sorted as string), g.scalar(1)]), cumsum])], { to: 1 })
  const k = g.node('ReduceSum', [support, g.int64([axis])], { keepdims: 1 })
  // Keras' TensorFlow backend sums the cumulative sums over the support (not the values): its
  // outputs are what the model was trained with, so they are matched as they are.
  const total = g.node('ReduceSum', [mul(g, support, cumsum), g.int64([axis])], { keepdims: 1 })
  const tau = g.node('Div', [g.node('Sub', [total, g.scalar(1)]), k])
  return g.node('Relu', [g.node('Sub', [x, tau])])
}

/** Keras 3 may write an activation as {class_name: "function", config: "relu"}. */
function activationName (value: unknown): string | undefined {
  if (value === undefined || value === null) return 'linear'
  if (typeof value === 'string') return value
  if (typeof value === 'object' && 'config' in value && typeof value.config === 'string') return value.config
  return undefined
}

export function applyActivation (ctx: LayerContext, t: Sym, activation: unknown): Sym {
  const name = activationName(activation)
  const expr = name === undefined ? undefined : ACTIVATIONS[name]
  if (expr === undefined) {
    ctx.fail(`activation ${JSON.stringify(activation)} is not a Keras built-in this server supports (${Object.keys(ACTIVATIONS).join(', ')})`)
  }
  const y = (expr as Expr)(ctx.g, t.name, ctx, t)
  // glu halves the last axis; every other activation keeps the shape.
  const shape = name === 'glu' ? [...t.shape.slice(0, -1), (t.shape.at(-1) as number) / 2] : t.shape
  return y === t.name ? t : { ...t, name: y, shape }
}

function relu (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const g = ctx.g
  const maxValue = ctx.config.max_value
  const slope = num(ctx.config.negative_slope, 0)
  const threshold = num(ctx.config.threshold, 0)
  let y: string
  if (slope === 0 && threshold === 0) {
    y = typeof maxValue === 'number' ? g.node('Clip', [t.name, g.scalar(0), g.scalar(maxValue)]) : g.node('Relu', [t.name])
    return { ...t, name: y }
  } else {
    // Keras: x ≥ threshold → x, otherwise negative_slope·(x − threshold)
    const below = mul(g, g.node('Sub', [t.name, g.scalar(threshold)]), g.scalar(slope))
    y = g.node('Where', [g.node('GreaterOrEqual', [t.name, g.scalar(threshold)]), t.name, below])
  }
  if (typeof maxValue === 'number') y = g.node('Min', [y, g.scalar(maxValue)])
  return { ...t, name: y }
}

function prelu (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const shared = new Set((Array.isArray(ctx.config.shared_axes) ? ctx.config.shared_axes as number[] : []).map((a) => positiveAxis(a, t.shape.length)))
  const dims = t.shape.slice(1).map((d, i) => (shared.has(i + 1) ? 1 : d))
  if (dims.some((d) => d === null)) ctx.fail('PReLU needs a fully known input shape')
  const alpha = ctx.weight('alpha', dims as number[])
  // alpha is stored in Keras' order, so it is applied to the tensor in that order.
  const y = ctx.g.node('PRelu', [ctx.keras(t), ctx.g.constant(`${ctx.name}.alpha`, [1, ...dims as number[]], alpha)])
  return { ...t, name: y, cf: false }
}

function softmaxLayer (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const rank = t.shape.length
  const axes = Array.isArray(ctx.config.axis) ? ctx.config.axis as number[] : [num(ctx.config.axis, -1)]
  if (axes.length !== 1) ctx.fail('Softmax over several axes is not supported')
  const axis = positiveAxis(axes[0] as number, rank)
  return { ...t, name: ctx.g.node('Softmax', [t.name], { axis: t.cf ? cfAxis(axis, rank) : axis }) }
}

export const activationLayers: Record<string, LayerHandler> = {
  ReLU: { convert: relu },
  LeakyReLU: {
    convert: (ctx, [x]) => ({ ...x as Sym, name: ctx.g.node('LeakyRelu', [(x as Sym).name], { alpha: f(num(ctx.config.negative_slope ?? ctx.config.alpha, 0.3)) }) })
  },
  ELU: { convert: (ctx, [x]) => ({ ...x as Sym, name: ctx.g.node('Elu', [(x as Sym).name], { alpha: f(num(ctx.config.alpha, 1)) }) }) },
  PReLU: { convert: prelu, weights: () => ['alpha'] },
  Softmax: { convert: softmaxLayer }
}
