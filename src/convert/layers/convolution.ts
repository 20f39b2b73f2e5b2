// Conv1D/2D/3D (groups, dilation), DepthwiseConv1D/2D, SeparableConv1D/2D, Conv2DTranspose.
// Kernels are rearranged once at conversion from Keras' [...k, in, out] to ONNX's [out, in, ...k].
import type { LayerContext, LayerHandler, Shape, Sym } from '../layer-api.js'
import { bool, isChannelsFirstConfig, num, str, tuple } from '../layer-api.js'
import { permute, samePads, windowOutput } from '../tensor-math.js'
import { applyActivation } from './activation.js'

interface Geometry {
  /** Spatial sizes of the input (null when unknown). */
  spatial: Shape
  channels: number
  /** The ONNX input, channels-first. */
  input: string
  channelsFirst: boolean
}

function geometry (ctx: LayerContext, t: Sym, rank: number): Geometry {
  if (t.shape.length !== rank + 2) ctx.fail(`expects a rank-${rank + 2} input, got [${t.shape.join(', ')}]`)
  const channelsFirst = isChannelsFirstConfig(ctx.config)
  const channels = channelsFirst ? t.shape[1] : t.shape.at(-1)
  if (typeof channels !== 'number') ctx.fail('needs a known number of input channels')
  return {
    spatial: channelsFirst ? t.shape.slice(2) : t.shape.slice(1, -1),
    channels: channels as number,
    input: channelsFirst ? ctx.keras(t) : ctx.cf(t),
    channelsFirst
  }
}

/** ONNX pads/auto_pad attributes for Keras' padding, plus the output spatial sizes. */
export function windowAttrs (
  ctx: LayerContext, spatial: Shape, kernel: number[], strides: number[], dilations: number[], padding: string
): { attrs: Record<string, number[] | string>, out: Shape } {
  const out = spatial.map((s, i) => windowOutput(s, kernel[i] as number, strides[i] as number, dilations[i] as number, padding))
  if (padding === 'valid') return { attrs: { pads: Array<number>(spatial.length * 2).fill(0) }, out }
  if (padding === 'causal') {
    if (spatial.length !== 1) ctx.fail('causal padding is for 1-D convolutions')
    return { attrs: { pads: [((kernel[0] as number) - 1) * (dilations[0] as number), 0] }, out }
  }
  if (padding !== 'same') ctx.fail(`padding "${padding}" is not supported (valid, same, causal)`)
  if (spatial.some((s) => s === null)) return { attrs: { auto_pad: 'SAME_UPPER' }, out }
  const pads = spatial.map((s, i) => samePads(s as number, kernel[i] as number, strides[i] as number, dilations[i] as number))
  return { attrs: { pads: [...pads.map((p) => p[0]), ...pads.map((p) => p[1])] }, out }
}

function output (ctx: LayerContext, name: string, batch: number | null, spatial: Shape, channels: number, channelsFirst: boolean): Sym {
  const shape: Shape = channelsFirst ? [batch, channels, ...spatial] : [batch, ...spatial, channels]
  return applyActivation(ctx, { name, shape, cf: !channelsFirst }, ctx.config.activation)
}

/** Keras kernel [...k, a, b] → ONNX [b, a, ...k]. */
function toOnnxKernel (data: Float32Array, dims: number[]): { data: Float32Array, dims: number[] } {
  const r = dims.length
  const perm = [r - 1, r - 2, ...Array.from({ length: r - 2 }, (_, i) => i)]
  return { data: permute(data, dims, perm), dims: perm.map((p) => dims[p] as number) }
}

function bias (ctx: LayerContext, filters: number): string[] {
  if (!bool(ctx.config.use_bias, true)) return []
  return [ctx.g.constant(`${ctx.name}.bias`, [filters], ctx.weight('bias', [filters]))]
}

function conv (rank: number) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const geo = geometry(ctx, t, rank)
    const kernel = tuple(ctx.config.kernel_size, rank, 1)
    const strides = tuple(ctx.config.strides, rank, 1)
    const dilations = tuple(ctx.config.dilation_rate, rank, 1)
    const groups = num(ctx.config.groups, 1)
    const filters = num(ctx.config.filters, 0)
    if (filters < 1 || geo.channels % groups !== 0) ctx.fail(`filters ${filters} and groups ${groups} do not fit ${geo.channels} input channels`)
    const dims = [...kernel, geo.channels / groups, filters]
    const k = toOnnxKernel(ctx.weight('kernel', dims), dims)
    const { attrs, out } = windowAttrs(ctx, geo.spatial, kernel, strides, dilations, str(ctx.config.padding, 'valid'))
    const w = ctx.g.constant(`${ctx.name}.kernel`, k.dims, k.data)
    const y = ctx.g.node('Conv', [geo.input, w, ...bias(ctx, filters)], { ...attrs, kernel_shape: kernel, strides, dilations, group: groups }, ctx.name)
    return output(ctx, y, t.shape[0] ?? null, out, filters, geo.channelsFirst)
  }
}

/** Depthwise kernel [...k, C, m] → ONNX [C·m, 1, ...k] (output channel c·m + j, as in Keras). */
function depthwiseKernel (ctx: LayerContext, kind: string, kernel: number[], channels: number, multiplier: number): string {
  const dims = [...kernel, channels, multiplier]
  const r = dims.length
  const data = permute(ctx.weight(kind, dims), dims, [r - 2, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i)])
  return ctx.g.constant(`${ctx.name}.depthwise_kernel`, [channels * multiplier, 1, ...kernel], data)
}

// Keras 2 calls DepthwiseConv2D's kernel `depthwise_kernel`, Keras 3 `kernel`.
const DEPTHWISE = 'depthwise_kernel|kernel'

function depthwise (rank: number, separable: boolean) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const geo = geometry(ctx, t, rank)
    const kernel = tuple(ctx.config.kernel_size, rank, 1)
    const strides = tuple(ctx.config.strides, rank, 1)
    const dilations = tuple(ctx.config.dilation_rate, rank, 1)
    const multiplier = num(ctx.config.depth_multiplier, 1)
    const { attrs, out } = windowAttrs(ctx, geo.spatial, kernel, strides, dilations, str(ctx.config.padding, 'valid'))
    const w = depthwiseKernel(ctx, separable ? 'depthwise_kernel' : DEPTHWISE, kernel, geo.channels, multiplier)
    const mid = geo.channels * multiplier
    const common = { ...attrs, kernel_shape: kernel, strides, dilations, group: geo.channels }
    if (!separable) {
      const y = ctx.g.node('Conv', [geo.input, w, ...bias(ctx, mid)], common, ctx.name)
      return output(ctx, y, t.shape[0] ?? null, out, mid, geo.channelsFirst)
    }
    const dw = ctx.g.node('Conv', [geo.input, w], common, `${ctx.name}_depthwise`)
    const filters = num(ctx.config.filters, 0)
    const ones = Array<number>(rank).fill(1)
    const pdims = [...ones, mid, filters]
    const p = toOnnxKernel(ctx.weight('pointwise_kernel', pdims), pdims)
    const pw = ctx.g.constant(`${ctx.name}.pointwise_kernel`, p.dims, p.data)
    const y = ctx.g.node('Conv', [dw, pw, ...bias(ctx, filters)], { kernel_shape: ones, pads: Array<number>(rank * 2).fill(0) }, ctx.name)
    return output(ctx, y, t.shape[0] ?? null, out, filters, geo.channelsFirst)
  }
}

/** Keras' deconv_output_length (keras/src/utils/conv_utils in spirit: same, valid, output_padding). */
function transposeOutput (size: number, kernel: number, stride: number, dilation: number, padding: string, outputPadding: number | undefined): number {
  const k = (kernel - 1) * dilation + 1
  if (outputPadding === undefined) return padding === 'valid' ? size * stride + Math.max(k - stride, 0) : size * stride
  const pad = padding === 'same' ? Math.floor(k / 2) : 0
  return (size - 1) * stride + k - 2 * pad + outputPadding
}

function convTranspose (rank: number) {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    const geo = geometry(ctx, t, rank)
    if (geo.spatial.some((s) => s === null)) ctx.fail('needs known spatial input sizes')
    const kernel = tuple(ctx.config.kernel_size, rank, 1)
    const strides = tuple(ctx.config.strides, rank, 1)
    const dilations = tuple(ctx.config.dilation_rate, rank, 1)
    const padding = str(ctx.config.padding, 'valid')
    const outputPadding = ctx.config.output_padding === null || ctx.config.output_padding === undefined ? undefined : tuple(ctx.config.output_padding, rank, 0)
    const filters = num(ctx.config.filters, 0)
    const dims = [...kernel, filters, geo.channels]
    // Keras [...k, out, in] → ONNX ConvTranspose [in, out, ...k]
    const k = toOnnxKernel(ctx.weight('kernel', dims), dims)
    const before: number[] = []
    const after: number[] = []
    const extra: number[] = []
    const out = (geo.spatial as number[]).map((size, i) => {
      const s = strides[i] as number
      const kk = ((kernel[i] as number) - 1) * (dilations[i] as number) + 1
      const target = transposeOutput(size, kernel[i] as number, s, dilations[i] as number, padding, outputPadding?.[i])
      // The pads the forward convolution (target → size) would use, cropped from the output.
      const [b, a] = padding === 'same' ? samePads(target, kernel[i] as number, s, dilations[i] as number) : [0, 0]
      before.push(b)
      after.push(a)
      extra.push(target - (s * (size - 1) + kk - b - a))
      return target
    })
    if (extra.some((e, i) => e < 0 || e >= Math.max(strides[i] as number, dilations[i] as number))) ctx.fail('this padding/output_padding combination has no ONNX equivalent')
    const w = ctx.g.constant(`${ctx.name}.kernel`, k.dims, k.data)
    const y = ctx.g.node('ConvTranspose', [geo.input, w, ...bias(ctx, filters)], {
      kernel_shape: kernel, strides, dilations, pads: [...before, ...after], output_padding: extra
    }, ctx.name)
    return output(ctx, y, t.shape[0] ?? null, out, filters, geo.channelsFirst)
  }
}

const withBias = (names: string[]) => (c: Readonly<Record<string, unknown>>) => (bool(c.use_bias, true) ? [...names, 'bias'] : names)

// Only the layers checked against Keras (test/fixtures/keras) are registered: 3-D and the
// rarer 1-D variants are refused rather than converted unchecked.
export const convolutionLayers: Record<string, LayerHandler> = {
  Conv1D: { convert: conv(1), weights: withBias(['kernel']) },
  Conv2D: { convert: conv(2), weights: withBias(['kernel']) },
  DepthwiseConv2D: { convert: depthwise(2, false), weights: withBias([DEPTHWISE]) },
  SeparableConv2D: { convert: depthwise(2, true), weights: withBias(['depthwise_kernel', 'pointwise_kernel']) },
  Conv2DTranspose: { convert: convTranspose(2), weights: withBias(['kernel']) }
}
