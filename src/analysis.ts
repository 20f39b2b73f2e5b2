import { randomUUID } from 'node:crypto'
import { AppError } from './errors.js'
import { decodeImage, type DecodeLimits } from './imaging/preprocess.js'
import { sniffFormat, type ImageFormat } from './imaging/sniff.js'
import type { Engine } from './inference/engine.js'
import { toPredictions, type Prediction } from './inference/postprocess.js'

/** The shape the team's results page reads (CLIENTS.md), derived from the predictions. */
export interface SkinAnalysis {
  /** Every label, highest first: the predictions under the names that page reads. */
  skin_conditions: Array<{ type: string, confidence: number }>
  total_conditions: number
  ai_processed: true
  /** "<model name> <version>" */
  ai_level: string
}

export interface Analysis {
  success: true
  /** Unique per analysis, for the client to store the result under. */
  analysis_id: string
  /** When the analysis finished, ISO 8601 UTC. */
  timestamp: string
  model: { name: string, version: string, demo: boolean }
  predictions: Prediction[]
  top: Prediction
  image: { width: number, height: number, format: ImageFormat }
  /** inference is the model run in its worker; queue is the wait for a worker before it. */
  timingsMs: { preprocess: number, queue: number, inference: number, total: number }
  skin_analysis: SkinAnalysis
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
  const t1 = performance.now()
  // The worker builds the tensor from the pixels (pool.ts): nothing per pixel on the main thread.
  const output = await engine.pool.inferPixels(decoded.rgb, spec.input, signal)
  const t2 = performance.now()
  const predictions = toPredictions(output.data, spec.labels, spec.output.activation)
  const total = ms(t0, performance.now())
  return {
    success: true,
    analysis_id: randomUUID(),
    timestamp: new Date().toISOString(),
    model: { name: spec.name, version: spec.version, demo: spec.demo },
    predictions,
    top: predictions[0]!,
    image: { width: decoded.width, height: decoded.height, format },
    timingsMs: {
      preprocess: ms(t0, t1),
      queue: ms(0, Math.max(0, t2 - t1 - output.runMs)),
      inference: ms(0, output.runMs),
      total
    },
    skin_analysis: {
      skin_conditions: predictions.map(({ label, confidence }) => ({ type: label, confidence })),
      total_conditions: predictions.length,
      ai_processed: true,
      ai_level: `${spec.name} ${spec.version}`
    }
  }
}
