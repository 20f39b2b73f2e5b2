import { AppError } from './errors.js'
import { decodeImage, type DecodeLimits } from './imaging/preprocess.js'
import { sniffFormat, type ImageFormat } from './imaging/sniff.js'
import { inputDims, toTensor } from './imaging/tensor.js'
import type { Engine } from './inference/engine.js'
import { toPredictions, type Prediction } from './inference/postprocess.js'

export interface Analysis {
  model: { name: string, version: string, demo: boolean }
  predictions: Prediction[]
  top: Prediction
  image: { width: number, height: number, format: ImageFormat }
  /** inference is the model run in its worker; queue is the wait for a worker before it. */
  timingsMs: { preprocess: number, queue: number, inference: number, total: number }
}

const ms = (from: number, to: number) => Math.round((to - from) * 10) / 10

/** Upload bytes → analysis: sniff, decode and resize (libuv threads), infer (worker), label. */
export async function analyzeImage (
  bytes: Buffer, engine: Engine, limits: DecodeLimits, signal?: AbortSignal
): Promise<Analysis> {
  const { spec } = engine.model
  const t0 = performance.now()
  if (bytes.length === 0) throw new AppError('NO_IMAGE', 'The image file is empty.')
  const format = sniffFormat(bytes)
  const decoded = await decodeImage(bytes, format, spec.input, limits)
  const tensor = toTensor(decoded.rgb, spec.input)
  const t1 = performance.now()
  const output = await engine.pool.infer(tensor, inputDims(spec.input), signal)
  const t2 = performance.now()
  const predictions = toPredictions(output.data, spec.labels, spec.output.activation)
  return {
    model: { name: spec.name, version: spec.version, demo: spec.demo },
    predictions,
    top: predictions[0]!,
    image: { width: decoded.width, height: decoded.height, format },
    timingsMs: {
      preprocess: ms(t0, t1),
      queue: ms(0, Math.max(0, t2 - t1 - output.runMs)),
      inference: ms(0, output.runMs),
      total: ms(t0, performance.now())
    }
  }
}
