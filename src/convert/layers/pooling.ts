// Max/Average pooling 1D/2D/3D (valid/same) and global pooling (keepdims).
import type { LayerContext, LayerHandler, Sym } from '../layer-api.js'
import { bool, isChannelsFirstConfig, str, tuple } from '../layer-api.js'
import { windowAttrs } from './convolution.js'

function pool (rank: number, op: 'MaxPool' | 'AveragePool') {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    if (t.shape.length !== rank + 2) ctx.fail(`expects a rank-${rank + 2} input, got [${t.shape.join(', ')}]`)
    const channelsFirst = isChannelsFirstConfig(ctx.config)
    const spatial = channelsFirst ? t.shape.slice(2) : t.shape.slice(1, -1)
    const size = tuple(ctx.config.pool_size, rank, 2)
    // Keras: strides default to the pool size.
    const strides = ctx.config.strides === null || ctx.config.strides === undefined ? size : tuple(ctx.config.strides, rank, 1)
    const ones = Array<number>(rank).fill(1)
    const { attrs, out } = windowAttrs(ctx, spatial, size, strides, ones, str(ctx.config.padding, 'valid'))
    // TensorFlow's average pooling divides by the pixels inside the image only (count_include_pad 0).
    const y = ctx.g.node(op, [channelsFirst ? ctx.keras(t) : ctx.cf(t)], { ...attrs, kernel_shape: size, strides }, ctx.name)
    const channels = channelsFirst ? t.shape[1] ?? null : t.shape.at(-1) ?? null
    return channelsFirst
      ? { name: y, shape: [t.shape[0] ?? null, channels, ...out], cf: false }
      : { name: y, shape: [t.shape[0] ?? null, ...out, channels], cf: true }
  }
}

function globalPool (rank: number, op: 'ReduceMean' | 'ReduceMax') {
  return (ctx: LayerContext, [x]: Sym[]): Sym => {
    const t = x as Sym
    if (t.shape.length !== rank + 2) ctx.fail(`expects a rank-${rank + 2} input, got [${t.shape.join(', ')}]`)
    const keepdims = bool(ctx.config.keepdims, false)
    const channelsFirst = isChannelsFirstConfig(ctx.config)
    const axes = Array.from({ length: rank }, (_, i) => i + 2)
    const y = ctx.g.node(op, [channelsFirst ? ctx.keras(t) : ctx.cf(t)], { axes, keepdims: keepdims ? 1 : 0 }, ctx.name)
    const batch = t.shape[0] ?? null
    const channels = channelsFirst ? t.shape[1] ?? null : t.shape.at(-1) ?? null
    const ones = Array<number>(rank).fill(1)
    if (!keepdims) return { name: y, shape: [batch, channels], cf: false }
    return channelsFirst ? { name: y, shape: [batch, channels, ...ones], cf: false } : { name: y, shape: [batch, ...ones, channels], cf: true }
  }
}

export const poolingLayers: Record<string, LayerHandler> = {
  MaxPooling1D: { convert: pool(1, 'MaxPool') },
  MaxPooling2D: { convert: pool(2, 'MaxPool') },
  AveragePooling1D: { convert: pool(1, 'AveragePool') },
  AveragePooling2D: { convert: pool(2, 'AveragePool') },
  GlobalAveragePooling1D: { convert: globalPool(1, 'ReduceMean') },
  GlobalAveragePooling2D: { convert: globalPool(2, 'ReduceMean') },
  GlobalMaxPooling1D: { convert: globalPool(1, 'ReduceMax') },
  GlobalMaxPooling2D: { convert: globalPool(2, 'ReduceMax') }
}
