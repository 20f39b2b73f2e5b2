// Flatten, Reshape, Permute, ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D.
import type { LayerContext, LayerHandler, Shape, Sym } from '../layer-api.js'
import { isChannelsFirstConfig, str, tuple } from '../layer-api.js'

const product = (s: Shape): number | null => (s.every((d) => typeof d === 'number') ? (s as number[]).reduce((a, b) => a * b, 1) : null)

function flatten (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  // Keras flattens in its own (channels-last) order, which the next Dense's weights assume.
  const y = ctx.g.node('Flatten', [ctx.keras(t)], { axis: 1 }, ctx.name)
  return { name: y, shape: [t.shape[0] ?? null, product(t.shape.slice(1))], cf: false }
}

function reshape (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const target = Array.isArray(ctx.config.target_shape) ? ctx.config.target_shape as number[] : ctx.fail('has no target_shape')
  const known = product(t.shape.slice(1))
  const rest = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1)
  const shape: Shape = [t.shape[0] ?? null, ...target.map((d) => (d === -1 ? (known === null ? null : known / rest) : d))]
  // [N, C] → [N, 1, 1, C] (squeeze-and-excitation) is the channels-first [N, C, 1, 1] as well:
  // reshape straight into that layout, so the 1×1 convolutions after it need no Transpose.
  const rank = shape.length
  if (rank >= 3 && t.shape.length === 2 && shape.slice(1, -1).every((d) => d === 1)) {
    const cfShape = [0, shape.at(-1) as number, ...Array<number>(rank - 2).fill(1)]
    return { name: ctx.g.node('Reshape', [t.name, ctx.g.int64(cfShape)], {}, ctx.name), shape, cf: true }
  }
  const y = ctx.g.node('Reshape', [ctx.keras(t), ctx.g.int64([0, ...target])], {}, ctx.name)
  return { name: y, shape, cf: false }
}

function permuteLayer (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const dims = Array.isArray(ctx.config.dims) ? ctx.config.dims as number[] : ctx.fail('has no dims')
  const y = ctx.g.node('Transpose', [ctx.keras(t)], { perm: [0, ...dims] }, ctx.name)
  return { name: y, shape: [t.shape[0] ?? null, ...dims.map((d) => t.shape[d] ?? null)], cf: false }
}

/** ((before, after) per spatial axis) from Keras' int / tuple / tuple-of-tuples forms. */
function edges (value: unknown, rank: number): Array<[number, number]> {
  if (typeof value === 'number') return Array.from({ length: rank }, () => [value, value])
  // Cropping1D/ZeroPadding1D's (before, after): unreachable while only the 2-D layers are registered.
  /* c8 ignore next */
  if (Array.isArray(value) && value.length === 2 && rank === 1 && value.every((v) => typeof v === 'number')) return [[value[0], value[1]]]
  if (Array.isArray(value)) {
    return value.map((v) => (typeof v === 'number' ? [v, v] : [Number((v as number[])[0]), Number((v as number[])[1])]))
  }
  return Array.from({ length: rank }, () => [1, 1])
}

function spatialInput (ctx: LayerContext, t: Sym, rank: number): { name: string, spatial: Shape, channelsFirst: boolean } {
  if (t.shape.length !== rank + 2) ctx.fail(`expects a rank-${rank + 2} input, got [${t.shape.join(', ')}]`)
  const channelsFirst = isChannelsFirstConfig(ctx.config)
  return channelsFirst
    ? { name: ctx.keras(t), spatial: t.shape.slice(2), channelsFirst }
    : { name: ctx.cf(t), spatial: t.shape.slice(1, -1), channelsFirst }
}

function result (t: Sym, name: string, spatial: Shape, channelsFirst: boolean): Sym {
  const batch = t.shape[0] ?? null
  return channelsFirst
    ? { name, shape: [batch, t.shape[1] ?? null, ...spatial], cf: false }
    : { name, shape: [batch, ...spatial, t.shape.at(-1) ?? null], cf: true }
}

function zeroPadding (rank: number) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const input = spatialInput(ctx, t, rank)
    const e = edges(ctx.config.padding, rank)
    const pads = [0, 0, ...e.map((p) => p[0]), 0, 0, ...e.map((p) => p[1])]
    const y = ctx.g.node('Pad', [input.name, ctx.g.int64(pads)], { mode: 'constant' }, ctx.name)
    return result(t, y, input.spatial.map((s, i) => (s === null ? null : s + (e[i] as [number, number])[0] + (e[i] as [number, number])[1])), input.channelsFirst)
  }
}

function cropping (rank: number) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const input = spatialInput(ctx, t, rank)
    const e = edges(ctx.config.cropping, rank)
    // An end of 0 would mean "nothing"; the largest int64 means "to the end".
    const ends = e.map((p) => (p[1] === 0 ? Number.MAX_SAFE_INTEGER : -p[1]))
    const axes = Array.from({ length: rank }, (_, i) => i + 2)
    const y = ctx.g.node('Slice', [input.name, ctx.g.int64(e.map((p) => p[0])), ctx.g.int64(ends), ctx.g.int64(axes)], {}, ctx.name)
    return result(t, y, input.spatial.map((s, i) => (s === null ? null : s - (e[i] as [number, number])[0] - (e[i] as [number, number])[1])), input.channelsFirst)
  }
}

function upSampling (rank: number) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const input = spatialInput(ctx, t, rank)
    // `length` is UpSampling1D's name for it: unreachable while only UpSampling2D is registered.
    /* c8 ignore next */
    const size = tuple(ctx.config.size ?? ctx.config.length, rank, 2)
    const mode = str(ctx.config.interpolation, 'nearest')
    if (mode !== 'nearest' && mode !== 'bilinear') ctx.fail(`interpolation "${mode}" is not supported (nearest, bilinear)`)
    // tf.image.resize: nearest picks floor(asymmetric) pixels; bilinear uses half-pixel centres.
    const attrs: Record<string, string> = mode === 'nearest'
      ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
      : { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }
    const scales = ctx.g.constant(`${ctx.name}.scales`, [rank + 2], Float32Array.from([1, 1, ...size]))
    const y = ctx.g.node('Resize', [input.name, '', scales], attrs, ctx.name)
    return result(t, y, input.spatial.map((s, i) => (s === null ? null : s * (size[i] as number))), input.channelsFirst)
  }
}

export const reshapingLayers: Record<string, LayerHandler> = {
  Flatten: { convert: flatten },
  Reshape: { convert: reshape },
  Permute: { convert: permuteLayer },
  ZeroPadding2D: { convert: zeroPadding(2) },
  Cropping2D: { convert: cropping(2) },
  UpSampling2D: { convert: upSampling(2) }
}
