import type { TensorSpec } from '../imaging/tensor.js'
import type { TensorMetadata } from '../models/manifest.js'

/** What a worker is started with (Piscina's workerData). */
export interface WorkerInit {
  modelFile: string
  intraOpThreads: number
  /** The worker's nice value (BACKGROUND_NICE, src/thread-priority.ts); its ONNX Runtime threads inherit it. */
  nice?: number
  /** Names from the manifest; without one the model's first input and output are used. */
  inputName?: string
  outputName?: string
  /** Lets tests crash a worker on purpose; never set from configuration. */
  testHooks?: boolean
}

export type InferTask =
  | { kind: 'infer', data: Float32Array, dims: number[] }
  // A decoded photo (8-bit RGB, the model's input size): the worker builds the tensor, which
  // keeps that work off the main thread and sends a quarter of the bytes.
  | { kind: 'pixels', rgb: Uint8Array, spec: TensorSpec }
  | { kind: 'describe' }
  | { kind: 'crash', data: Float32Array, dims: number[] }

export type InferResult =
  | { kind: 'infer', threadId: number, runMs: number, data: Float32Array, dims: number[] }
  | { kind: 'describe', threadId: number, inputs: TensorMetadata[], outputs: TensorMetadata[] }
