import type { TensorMetadata } from '../models/manifest.js'

/** What a worker is started with (Piscina's workerData). */
export interface WorkerInit {
  modelFile: string
  intraOpThreads: number
  /** Names from the manifest; without one the model's first input and output are used. */
  inputName?: string
  outputName?: string
  /** Lets tests crash a worker on purpose; never set from configuration. */
  testHooks?: boolean
}

export type InferTask =
  | { kind: 'infer', data: Float32Array, dims: number[] }
  | { kind: 'describe' }
  | { kind: 'crash', data: Float32Array, dims: number[] }

export type InferResult =
  | { kind: 'infer', threadId: number, runMs: number, data: Float32Array, dims: number[] }
  | { kind: 'describe', threadId: number, inputs: TensorMetadata[], outputs: TensorMetadata[] }
