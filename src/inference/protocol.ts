import type { TensorMetadata } from '../models/manifest.js'

/** What a worker is started with (Piscina's workerData). */
export interface WorkerInit {
  modelFile: string
  intraOpThreads: number
  /** Names from the manifest; without one the model's first input and output are used. */
  inputName?: string
  outputName?: string
}

export type InferTask =
  | { kind: 'infer', data: Float32Array, dims: number[] }
  | { kind: 'describe' }

export type InferResult =
  | { kind: 'infer', threadId: number, data: Float32Array, dims: number[] }
  | { kind: 'describe', threadId: number, inputs: TensorMetadata[], outputs: TensorMetadata[] }
