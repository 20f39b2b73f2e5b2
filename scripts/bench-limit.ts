// The in-process limit: what one core does per image with the server's own code, run alone.
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { decodeImage, type DecodeLimits } from '../src/imaging/preprocess.js'
import { sniffFormat } from '../src/imaging/sniff.js'
import { inputDims, toTensor } from '../src/imaging/tensor.js'
import type { ModelSpec } from '../src/models/manifest.js'
import type { BenchImage } from './bench-images.js'

export interface ImageLimit {
  /** Median single-thread sniff + decode + resize + tensor, ms. */
  decodeMs: number
  /** Median single-thread inference, ms. */
  inferMs: number
  /** cores / (decodeMs + inferMs), req/s. */
  limit: number
}

export interface Budget {
  /** Each median is over at least this many runs… */
  minRuns: number
  /** …and at least this much time. */
  minMs: number
}

// The server's defaults (config.ts): MAX_IMAGE_PIXELS, and the decode timeout it derives.
const LIMITS: DecodeLimits = { maxPixels: 120_000_000, timeoutS: 30 }
const WARM_RUNS = 3
const MAX_RUNS = 1000

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function timeMedian (budget: Budget, run: () => Promise<number>): Promise<number> {
  for (let i = 0; i < WARM_RUNS; i++) await run()
  const times: number[] = []
  const start = performance.now()
  while (times.length < MAX_RUNS && (times.length < budget.minRuns || performance.now() - start < budget.minMs)) {
    times.push(await run())
  }
  return median(times)
}

/** A single-threaded ONNX Runtime session on this thread, configured like a server worker. */
export async function openSession (modelFile: string, intraOpNumThreads = 1): Promise<ort.InferenceSession> {
  return await ort.InferenceSession.create(modelFile, {
    intraOpNumThreads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all'
  })
}

export async function tensorFor (image: BenchImage, spec: ModelSpec): Promise<Float32Array> {
  const decoded = await decodeImage(image.bytes, sniffFormat(image.bytes), spec.input, LIMITS)
  return toTensor(decoded.rgb, spec.input)
}

export async function timeInference (
  session: ort.InferenceSession, spec: ModelSpec, tensor: Float32Array, budget: Budget
): Promise<number> {
  const feeds = { [spec.input.name]: new ort.Tensor('float32', tensor, inputDims(spec.input)) }
  return await timeMedian(budget, async () => {
    const t0 = performance.now()
    await session.run(feeds, [spec.output.name])
    return performance.now() - t0
  })
}

/**
 * Runs sequentially on the main thread: sharp with one libvips thread, one job at a time, and an
 * intra-op-1 session, so each figure is one core's worth of work.
 */
export async function measureLimits (
  images: BenchImage[], spec: ModelSpec, modelFile: string, cores: number, budget: Budget
): Promise<ImageLimit[]> {
  const previous = sharp.concurrency()
  sharp.concurrency(1)
  const session = await openSession(modelFile)
  try {
    const results: ImageLimit[] = []
    for (const image of images) {
      let tensor: Float32Array = new Float32Array(0)
      const decodeMs = await timeMedian(budget, async () => {
        // The server decodes a fresh buffer per request; a reused one could hit libvips' cache.
        const bytes = Buffer.from(image.bytes)
        const t0 = performance.now()
        const decoded = await decodeImage(bytes, sniffFormat(bytes), spec.input, LIMITS)
        tensor = toTensor(decoded.rgb, spec.input)
        return performance.now() - t0
      })
      const inferMs = await timeInference(session, spec, tensor, budget)
      results.push({ decodeMs, inferMs, limit: cores * 1000 / (decodeMs + inferMs) })
    }
    return results
  } finally {
    await session.release()
    sharp.concurrency(previous)
  }
}
