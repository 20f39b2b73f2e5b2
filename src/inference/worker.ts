// One ONNX Runtime session per worker thread, created once when the worker starts.
// Kept tiny on purpose: no logic worth testing lives here (STYLE.md §12).
import { threadId } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { workerData } from 'piscina'
import { inputDims, toTensor } from '../imaging/tensor.js'
import { lowerThisThread } from '../thread-priority.js'
import type { InferTask, InferResult, WorkerInit } from './protocol.js'

const init = workerData as WorkerInit
// Before the session exists, so the threads ONNX Runtime starts inherit it.
lowerThisThread(init.nice ?? 0)
const session = await ort.InferenceSession.create(init.modelFile, {
  intraOpNumThreads: init.intraOpThreads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all'
})
const inputName = init.inputName ?? session.inputNames[0] ?? 'input'
const outputName = init.outputName ?? session.outputNames[0] ?? 'output'

export default async function infer (task: InferTask): Promise<InferResult> {
  if (task.kind === 'describe') {
    const describe = (m: ort.InferenceSession.ValueMetadata) => ({ name: m.name, dims: m.isTensor ? [...m.shape] : [] })
    return { kind: 'describe', threadId, inputs: session.inputMetadata.map(describe), outputs: session.outputMetadata.map(describe) }
  }
  // Only pools built by tests enable this; it stands in for a native crash or an OOM kill.
  if (task.kind === 'crash' && init.testHooks === true) process.exit(70)
  const started = performance.now()
  const input = task.kind === 'pixels'
    ? new ort.Tensor('float32', toTensor(task.rgb, task.spec), inputDims(task.spec))
    : new ort.Tensor('float32', task.data, task.dims)
  const feeds = { [inputName]: input }
  const output = (await session.run(feeds, [outputName]))[outputName]
  // The output is a few floats: copying it back costs less than arranging a transfer.
  return { kind: 'infer', threadId, runMs: performance.now() - started, data: output?.data as Float32Array, dims: [...(output?.dims ?? [])] }
}
