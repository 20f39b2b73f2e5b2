// BatchNormalization (moving statistics), LayerNormalization, Normalization, Rescaling.
import type { LayerContext, LayerHandler, Sym } from '../layer-api.js'
import { bool, cfAxis, num, positiveAxis } from '../layer-api.js'

/** The constant's dims so a per-`axis` vector broadcasts against `t` as the ONNX tensor holds it. */
function broadcastDims (t: Sym, axis: number, length: number): number[] {
  const rank = t.shape.length
  const at = t.cf ? cfAxis(axis, rank) : axis
  return Array.from({ length: rank - at }, (_, i) => (i === 0 ? length : 1))
}

/** x·scale + shift along Keras axis `axis`: the form fold.ts merges into a preceding Conv. */
function affine (ctx: LayerContext, t: Sym, axis: number, scale: Float32Array, shift: Float32Array): Sym {
  const dims = broadcastDims(t, axis, scale.length)
  const y = ctx.g.node('Mul', [t.name, ctx.g.constant(`${ctx.name}.scale`, dims, scale)], {}, `${ctx.name}_scale`)
  return { ...t, name: ctx.g.node('Add', [y, ctx.g.constant(`${ctx.name}.shift`, dims, shift)], {}, ctx.name) }
}

function singleAxis (ctx: LayerContext, t: Sym, value: unknown): number {
  const list = Array.isArray(value) ? value as number[] : [num(value, -1)]
  if (list.length !== 1) ctx.fail(`normalising over axes [${list.join(', ')}] is not supported (one axis)`)
  return positiveAxis(list[0] as number, t.shape.length)
}

function channels (ctx: LayerContext, t: Sym, axis: number): number {
  const c = t.shape[axis]
  if (typeof c !== 'number') ctx.fail(`needs a known size on axis ${axis}`)
  return c as number
}

function batchNorm (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const axis = singleAxis(ctx, t, ctx.config.axis)
  const c = channels(ctx, t, axis)
  const eps = num(ctx.config.epsilon, 1e-3)
  const gamma = bool(ctx.config.scale, true) ? ctx.weight('gamma', [c]) : undefined
  const beta = bool(ctx.config.center, true) ? ctx.weight('beta', [c]) : undefined
  const mean = ctx.weight('moving_mean', [c])
  const variance = ctx.weight('moving_variance', [c])
  // Keras at inference: (x − mean)·γ/√(var + ε) + β, computed here in float32 as Keras does.
  const scale = new Float32Array(c)
  const shift = new Float32Array(c)
  for (let i = 0; i < c; i++) {
    const inv = Math.fround(Math.fround(1 / Math.sqrt(Math.fround((variance[i] as number) + eps))) * (gamma?.[i] ?? 1))
    scale[i] = inv
    shift[i] = (beta?.[i] ?? 0) - (mean[i] as number) * inv
  }
  return affine(ctx, t, axis, scale, shift)
}

function layerNorm (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  if (bool(ctx.config.rms_scaling, false)) ctx.fail('rms_scaling is not supported')
  const rank = t.shape.length
  const axes = (Array.isArray(ctx.config.axis) ? ctx.config.axis as number[] : [num(ctx.config.axis, -1)]).map((a) => positiveAxis(a, rank)).sort((a, b) => a - b)
  // ONNX normalises over one trailing run of axes, from `axis` to the last.
  if (axes.some((a, i) => a !== rank - axes.length + i)) ctx.fail(`normalising over axes [${axes.join(', ')}] is not supported (the trailing axes only)`)
  const dims = axes.map((a) => channels(ctx, t, a))
  const count = dims.reduce((a, b) => a * b, 1)
  const gamma = bool(ctx.config.scale, true) ? ctx.weight('gamma', { count }) : new Float32Array(count).fill(1)
  const beta = bool(ctx.config.center, true) ? ctx.weight('beta', { count }) : undefined
  const inputs = [ctx.keras(t), ctx.g.constant(`${ctx.name}.gamma`, dims, gamma)]
  if (beta !== undefined) inputs.push(ctx.g.constant(`${ctx.name}.beta`, dims, beta))
  const y = ctx.g.node('LayerNormalization', inputs, { axis: axes[0] as number, epsilon: { float: num(ctx.config.epsilon, 1e-3) } }, ctx.name)
  return { ...t, name: y, cf: false }
}

// keras.backend.epsilon(): Normalization divides by max(√var, 1e-7).
const KERAS_EPSILON = 1e-7

function fromConfigOrWeight (ctx: LayerContext, key: 'mean' | 'variance', c: number): Float32Array {
  const v = ctx.config[key]
  if (typeof v === 'number') return new Float32Array(c).fill(v)
  if (Array.isArray(v)) {
    const flat = (v as unknown[]).flat(8) as number[]
    if (flat.length === 1) return new Float32Array(c).fill(flat[0] as number)
    if (flat.length === c) return Float32Array.from(flat)
    ctx.fail(`${key} has ${flat.length} values for ${c} channels`)
  }
  return ctx.weight(key, { count: c })
}

function normalization (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const axis = singleAxis(ctx, t, ctx.config.axis)
  const c = channels(ctx, t, axis)
  const mean = fromConfigOrWeight(ctx, 'mean', c)
  const variance = fromConfigOrWeight(ctx, 'variance', c)
  const std = variance.map((v) => Math.max(Math.sqrt(v), KERAS_EPSILON))
  if (bool(ctx.config.invert, false)) return affine(ctx, t, axis, std, mean)
  return affine(ctx, t, axis, std.map((s) => 1 / s), mean.map((m, i) => -m / (std[i] as number)))
}

function rescaling (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const vector = (v: unknown, fallback: number) => Float32Array.from(Array.isArray(v) ? (v as unknown[]).flat(8) as number[] : [num(v, fallback)])
  const scale = vector(ctx.config.scale, 1)
  const offset = vector(ctx.config.offset, 0)
  const rank = t.shape.length
  if (scale.length > 1 || offset.length > 1) {
    const c = Math.max(scale.length, offset.length)
    const widen = (v: Float32Array) => (v.length === c ? v : new Float32Array(c).fill(v[0] as number))
    return affine(ctx, t, rank - 1, widen(scale), widen(offset))
  }
  let y = t.name
  if (scale[0] !== 1) y = ctx.g.node('Mul', [y, ctx.g.scalar(scale[0] as number)], {}, `${ctx.name}_scale`)
  if (offset[0] !== 0) y = ctx.g.node('Add', [y, ctx.g.scalar(offset[0] as number)], {}, ctx.name)
  return { ...t, name: y }
}

export const normalizationLayers: Record<string, LayerHandler> = {
  BatchNormalization: {
    convert: batchNorm,
    weights: (c) => [...(bool(c.scale, true) ? ['gamma'] : []), ...(bool(c.center, true) ? ['beta'] : []), 'moving_mean', 'moving_variance']
  },
  LayerNormalization: {
    convert: layerNorm,
    weights: (c) => [...(bool(c.scale, true) ? ['gamma'] : []), ...(bool(c.center, true) ? ['beta'] : [])]
  },
  Normalization: { convert: normalization, weights: () => ['mean', 'variance', 'count'] },
  Rescaling: { convert: rescaling }
}
