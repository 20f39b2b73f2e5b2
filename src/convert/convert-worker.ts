// One Keras/TF.js → ONNX conversion in its own thread, started and ended by
// src/models/conversion.ts: HDF5 reading and graph building are synchronous, so they never run
// on the thread that answers /health. Kept tiny (STYLE.md §12).
import { parentPort, workerData } from 'node:worker_threads'
import { convertKerasFile } from './convert.js'
import { detectFormat } from './detect.js'
import type { ConversionJob, ConversionReply } from '../models/conversion.js'

const job = workerData as ConversionJob
let reply: ConversionReply
const transfer: ArrayBuffer[] = []
try {
  const format = await detectFormat(job.path, job.what)
  if (format === 'onnx') {
    reply = { ok: true, format }
  } else {
    const { onnx, summary } = await convertKerasFile(job.path, format, job.workDir, job.what)
    // A view into a bigger (or pooled) buffer is copied once, so only its own bytes move.
    const bytes = onnx.byteOffset === 0 && onnx.byteLength === onnx.buffer.byteLength ? onnx : onnx.slice()
    transfer.push(bytes.buffer as ArrayBuffer)
    reply = { ok: true, format, onnx: bytes, summary }
  }
} catch (err) {
  reply = { ok: false, name: (err as Error).name, message: (err as Error).message }
}
parentPort?.postMessage(reply, transfer)
