// Runs one Keras/TF.js → ONNX conversion in a one-shot worker thread (src/convert/convert-worker.ts).
// The converter loads h5wasm (HDF5 in WebAssembly, ~0.5 GB of address space once loaded) and does
// seconds of synchronous work on a real model: in a thread of its own /health keeps answering,
// and everything it allocated goes away with the thread.
import { open } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import type { ConvertSummary, KerasFormat } from '../convert/convert.js'
import { ConvertError } from '../convert/errors.js'

export interface ConversionJob {
  path: string
  /** Temp files (a .keras file's weights) go here: a staging folder on the cache's disk. */
  workDir: string
  /** How the file is named in messages (an S3 URL, the user's path). */
  what: string
  /** Where the converted ONNX is written (a new file, fsynced), when the source needs converting. */
  out: string
}

export type ConversionReply =
  | { ok: true, format: 'onnx' }
  | { ok: true, format: KerasFormat, sha256: string, summary: ConvertSummary }
  | { ok: false, name: string, message: string }

export type Conversion = Exclude<ConversionReply, { ok: false }>

// Sources run as .ts under tap; the build runs dist/*.js (STYLE.md §13).
/* c8 ignore next: the .js branch runs only in the built server (covered by the spawned server tests) */
const WORKER = new URL(import.meta.url.endsWith('.ts') ? '../convert/convert-worker.ts' : '../convert/convert-worker.js', import.meta.url)
// The JS heap of the converting thread; weights live in ArrayBuffers and WebAssembly memory,
// which the converter bounds itself (declared sizes are checked before anything is allocated).
const MAX_HEAP_MB = 1024

/**
 * An ONNX ModelProto starts with field 1 (ir_version, varint ≥ 3); a SavedModel's
 * saved_model.pb with 08 01 12. Only these bytes are read on the main thread: everything
 * else goes to the worker, whose detectFormat names what the file is.
 */
export function looksLikeOnnx (head: Uint8Array): boolean {
  const [a, b] = head
  return a === 0x08 && b !== undefined && b >= 3 && b < 0x40
}

export async function readHead (path: string, bytes = 16): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buf = Buffer.alloc(bytes)
    const { bytesRead } = await handle.read(buf, 0, bytes, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

/**
 * Detects the file's format and converts it when it is Keras or TF.js. A file the converter
 * refuses (or a crash of the thread) rejects with a ConvertError whose message says why.
 */
export async function convertOffThread (job: ConversionJob): Promise<Conversion> {
  const worker = new Worker(WORKER, { workerData: job, resourceLimits: { maxOldGenerationSizeMb: MAX_HEAP_MB }, stdout: true, stderr: true })
  // HDF5's C library prints diagnostics for damaged files; the ConvertError says it in one line.
  worker.stdout.resume()
  worker.stderr.resume()
  const reply = await new Promise<ConversionReply>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new ConvertError(`the converter stopped (exit code ${code}) before it answered`)))
  }).catch(asConvertError(job.what)).finally(async () => { await worker.terminate() })
  if (!reply.ok) throw new ConvertError(reply.name === 'ConvertError' ? reply.message : `${job.what}: the converter failed (${reply.name}: ${reply.message})`)
  return reply
}

/** Rejection handler: a thread that dies instead of answering still fails with a ConvertError. */
function asConvertError (what: string): (err: unknown) => never {
  /* c8 ignore start -- a thread that dies (heap limit, a native crash in h5wasm) rather than refusing;
     no test input makes the converter die */
  return (err) => {
    if (err instanceof ConvertError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new ConvertError(code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? `${what}: the conversion needed more than ${MAX_HEAP_MB} MB of JavaScript heap`
      : `${what}: the converter crashed (${(err as Error).message})`)
  }
  /* c8 ignore stop */
}
