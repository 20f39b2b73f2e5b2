// Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate: elementwise with broadcasting,
// in whichever layout the inputs already have (channels-first when any of them is).
import type { LayerContext, LayerHandler, Shape, Sym } from '../layer-api.js'
import { cfAxis, num, positiveAxis } from '../layer-api.js'

// Rank-0 inputs are the constants of Keras 3 operation nodes (`x + 3.0`): they broadcast anywhere.
const tensors = (inputs: Sym[]) => inputs.filter((t) => t.shape.length > 0)

function common (ctx: LayerContext, inputs: Sym[]): { names: string[], cf: boolean } {
  if (inputs.length < 2) ctx.fail(`needs at least two inputs, got ${inputs.length}`)
  const rank = (tensors(inputs)[0] as Sym).shape.length
  if (tensors(inputs).some((t) => t.shape.length !== rank)) ctx.fail(`inputs of different ranks (${inputs.map((t) => `[${t.shape.join(', ')}]`).join(' and ')})`)
  const cf = rank >= 3 && inputs.some((t) => t.cf)
  return { names: inputs.map((t) => (cf ? ctx.cf(t) : ctx.keras(t))), cf }
}

function broadcast (all: Sym[]): Shape {
  const inputs = tensors(all)
  const rank = (inputs[0] as Sym).shape.length
  return Array.from({ length: rank }, (_, i) => {
    const sizes = inputs.map((t) => t.shape[i])
    const known = sizes.filter((s): s is number => typeof s === 'number' && s !== 1)
    return known[0] ?? (sizes.some((s) => s === null) ? null : 1)
  })
}

function chain (op: string) {
  return (ctx: LayerContext, inputs: Sym[]): Sym => {
    const { names, cf } = common(ctx, inputs)
    let y = names[0] as string
    for (let i = 1; i < names.length; i++) y = ctx.g.node(op, [y, names[i] as string], {}, ctx.name)
    return { name: y, shape: broadcast(inputs), cf }
  }
}

function average (ctx: LayerContext, inputs: Sym[]): Sym {
  const sum = chain('Add')(ctx, inputs)
  return { ...sum, name: ctx.g.node('Mul', [sum.name, ctx.g.scalar(1 / inputs.length)], {}, ctx.name) }
}

function concatenate (ctx: LayerContext, inputs: Sym[]): Sym {
  const { names, cf } = common(ctx, inputs)
  const rank = (inputs[0] as Sym).shape.length
  const axis = positiveAxis(num(ctx.config.axis, -1), rank)
  const y = ctx.g.node('Concat', names, { axis: cf ? cfAxis(axis, rank) : axis }, ctx.name)
  const shape = [...(inputs[0] as Sym).shape]
  const sizes = inputs.map((t) => t.shape[axis])
  shape[axis] = sizes.every((s) => typeof s === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : null
  return { name: y, shape, cf }
}

/** keras.applications.InceptionResNetV2's scaled residual (Keras 3): x₀ + scale·x₁. */
function customScale (ctx: LayerContext, inputs: Sym[]): Sym {
  const { names, cf } = common(ctx, inputs)
  const scaled = ctx.g.node('Mul', [names[1] as string, ctx.g.scalar(num(ctx.config.scale, 1))], {}, `${ctx.name}_scale`)
  return { name: ctx.g.node('Add', [names[0] as string, scaled], {}, ctx.name), shape: broadcast(inputs), cf }
}

export const mergeLayers: Record<string, LayerHandler> = {
  Add: { convert: chain('Add') },
  Subtract: { convert: chain('Sub') },
  Multiply: { convert: chain('Mul') },
  Maximum: { convert: chain('Max') },
  Minimum: { convert: chain('Min') },
  Average: { convert: average },
  Concatenate: { convert: concatenate },
  CustomScaleLayer: { convert: customScale }
}
