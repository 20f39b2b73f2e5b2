import { basename } from 'node:path'
import { inputDims } from '../imaging/tensor.js'
import { checkSpecAgainstModel, specFromModelMetadata, type ModelSpec } from '../models/manifest.js'
import type { ModelSource, ResolvedBundle } from '../models/store.js'
import { createPool, type InferencePool } from './pool.js'

export interface LoadedModel {
  spec: ModelSpec
  source: ModelSource
  sourceError?: string
}

/** A model that is loaded on every worker and warm: what the analyze route needs. */
export interface Engine {
  model: LoadedModel
  pool: InferencePool
}

export interface EngineOptions {
  workers: number
  intraOpThreads: number
  /** Nice value of the workers (BACKGROUND_NICE); unset: they run at the main thread's. */
  backgroundNice?: number
  queueSize: number
  inferenceTimeoutMs: number
  /** Bounds how long closing the pool waits for running inferences (SHUTDOWN_GRACE_S). */
  shutdownGraceMs?: number
  /** Only tests set this (never configuration): it lets them crash a worker on purpose. */
  testHooks?: boolean
}

/**
 * Starts the pool on a resolved bundle, reads the model's own shapes when there is no manifest,
 * and warms every worker. `onPool` hands the pool out before warm-up so a shutdown that arrives
 * meanwhile can close it.
 */
export async function startEngine (
  bundle: ResolvedBundle, options: EngineOptions, onPool: (pool: InferencePool) => void = () => {}
): Promise<Engine> {
  const pool = createPool({
    modelFile: bundle.modelFile,
    intraOpThreads: options.intraOpThreads,
    nice: options.backgroundNice,
    inputName: bundle.spec?.input.name,
    outputName: bundle.spec?.output.name,
    workers: options.workers,
    maxQueue: options.queueSize,
    timeoutMs: options.inferenceTimeoutMs,
    closeTimeoutMs: options.shutdownGraceMs,
    testHooks: options.testHooks
  })
  onPool(pool)
  try {
    const io = await pool.describe()
    const file = basename(bundle.sourceFile ?? bundle.modelFile)
    const spec = bundle.spec ?? specFromModelMetadata(file, io.inputs, io.outputs, { format: bundle.format, labels: bundle.labels, sha256: bundle.sourceSha256 })
    checkSpecAgainstModel(spec, io.inputs, io.outputs)
    await pool.warmUp(inputDims(spec.input))
    const model: LoadedModel = { spec, source: bundle.source }
    if (bundle.sourceError !== undefined) model.sourceError = bundle.sourceError
    return { model, pool }
  } catch (err) {
    await pool.close()
    throw err
  }
}
