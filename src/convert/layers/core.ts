// InputLayer, Dense, Activation, and the layers that are identities at inference time.
import type { LayerContext, LayerHandler, Sym } from '../layer-api.js'
import { bool, num } from '../layer-api.js'
import { applyActivation } from './activation.js'

const identity: LayerHandler = { convert: (_ctx, [x]) => x as Sym }

/** y = x·kernel + bias over the last axis, on input of any rank (Keras' Dense on >2-D input). */
function dense (ctx: LayerContext, [x]: Sym[]): Sym {
  const t = x as Sym
  const units = num(ctx.config.units, 0)
  const inDim = t.shape.at(-1)
  if (units < 1 || typeof inDim !== 'number') ctx.fail(`needs a known input size and units (got input [${t.shape.join(', ')}], units ${units})`)
  const kernel = ctx.weight('kernel', [inDim as number, units])
  let y = ctx.g.node('MatMul', [ctx.keras(t), ctx.g.constant(`${ctx.name}.kernel`, [inDim as number, units], kernel)], {}, ctx.name)
  if (bool(ctx.config.use_bias, true)) {
    y = ctx.g.node('Add', [y, ctx.g.constant(`${ctx.name}.bias`, [units], ctx.weight('bias', [units]))], {}, `${ctx.name}_bias`)
  }
  const out: Sym = { name: y, shape: [...t.shape.slice(0, -1), units], cf: false }
  return applyActivation(ctx, out, ctx.config.activation)
}

function activation (ctx: LayerContext, [x]: Sym[]): Sym {
  return applyActivation(ctx, x as Sym, ctx.config.activation)
}

export const coreLayers: Record<string, LayerHandler> = {
  Dense: { convert: dense, weights: (c) => (bool(c.use_bias, true) ? ['kernel', 'bias'] : ['kernel']) },
  Activation: { convert: activation },
  // Inference-time identities: noise, dropout and augmentation only act while training.
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  SpatialDropout3D: identity,
  AlphaDropout: identity,
  GaussianDropout: identity,
  GaussianNoise: identity,
  ActivityRegularization: identity,
  RandomFlip: identity,
  RandomRotation: identity,
  RandomZoom: identity,
  RandomTranslation: identity,
  RandomContrast: identity,
  RandomBrightness: identity
}
