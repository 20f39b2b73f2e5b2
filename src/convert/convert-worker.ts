// One Keras/TF.js → ONNX conversion in its own thread, started and ended by
// src/models/conversion.ts: HDF5 reading and graph building are synchronous, so they never run
// on the thread that answers /health. Kept tiny (STYLE.md §12).
import { parentPort, workerData } from 'node:worker_threads'
import { convertKerasFile } from './convert.js'
import { detectFormat } from './detect.js'
import { writeOnnx } from './write-onnx.js'
import type { ConversionJob, ConversionReply } from '../models/conversion.js'

const job = workerData as ConversionJob
let reply: ConversionReply
try {
  const format = await detectFormat(job.path, job.what)
  if (format === 'onnx') {
    reply = { ok: true, format }
  } else {
    const { parts, summary } = await convertKerasFile(job.path, format, job.workDir, job.what)
    // Written here, so the model's bytes never cross to the thread that answers requests.
    const { sha256 } = await writeOnnx(parts, job.out)
    reply = { ok: true, format, sha256, summary }
  }
} catch (err) {
  reply = { ok: false, name: (err as Error).name, message: (err as Error).message }
}
parentPort?.postMessage(reply)
