// Keras class name → layer handler. The one place an unsupported layer is refused.
import { ConvertError } from './errors.js'
import type { LayerHandler } from './layer-api.js'
import { activationLayers } from './layers/activation.js'
import { convolutionLayers } from './layers/convolution.js'
import { coreLayers } from './layers/core.js'
import { mergeLayers } from './layers/merge.js'
import { normalizationLayers } from './layers/normalization.js'
import { poolingLayers } from './layers/pooling.js'
import { reshapingLayers } from './layers/reshaping.js'

const REGISTRY: ReadonlyMap<string, LayerHandler> = new Map(Object.entries({
  ...coreLayers,
  ...activationLayers,
  ...convolutionLayers,
  ...poolingLayers,
  ...normalizationLayers,
  ...mergeLayers,
  ...reshapingLayers
}))

export const SUPPORTED_LAYERS: readonly string[] = [...REGISTRY.keys()].sort()

const CODE_LAYERS = new Set(['Lambda', 'TFOpLambda', 'SlicingOpLambda'])

export function lookupLayer (className: string, name: string): LayerHandler {
  const handler = REGISTRY.get(className)
  if (handler !== undefined) return handler
  if (CODE_LAYERS.has(className)) {
    throw new ConvertError(`layer "${name}" is a ${className}: it holds Python code (or a TensorFlow op) that a server must never run; rebuild the model with built-in layers instead of the Lambda, or convert it to ONNX yourself`)
  }
  throw new ConvertError(`layer "${name}" is a ${className}, which this server cannot convert. Supported layers: ${SUPPORTED_LAYERS.join(', ')}`)
}
