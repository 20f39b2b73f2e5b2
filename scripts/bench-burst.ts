// The burst of issue 11, for npm run bench: BURST_SIZE uploads sent at the same instant (each on
// its own connection) to a server with one worker, /health polled every few ms meanwhile.
// Admission must answer what it cannot queue with 503 at once, and /health must stay quick.
import { request } from 'node:http'
import { Worker } from 'node:worker_threads'
import { scrape } from './bench-load.js'
import { percentile } from './bench-server.js'

export interface BurstFigures {
  /** Answers by HTTP status; 0 counts socket errors (a reset or EPIPE instead of an answer). */
  statuses: Map<number, number>
  /** From the first upload sent to the last answer. */
  wallMs: number
  health: { samples: number, p99: number, max: number, failures: number }
  /**
   * The server's own longest event-loop delay during the burst (prom-client's, reset by each
   * scrape of /metrics): what any request arriving then waited for the main thread. The client's
   * /health figures add this process's own wait for a CPU, which sends the uploads.
   */
  serverLagMaxMs: number
}

const lagMaxMs = async (url: string) => 1000 * ((await scrape(url)).get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN)

/**
 * /health polled from a thread of its own, so the figures are the server's and not this process's
 * event loop, which is busy writing the uploads.
 */
const POLLER = `
const { parentPort, workerData: { url, intervalMs } } = require('node:worker_threads')
const latencies = []
let failures = 0
let stopped = false
parentPort.once('message', () => { stopped = true })
;(async () => {
  while (!stopped) {
    const t0 = performance.now()
    const ok = await fetch(url).then(async (r) => { await r.arrayBuffer(); return r.status === 200 }, () => false)
    const elapsed = performance.now() - t0
    latencies.push(elapsed)
    if (!ok) failures++
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - elapsed)))
  }
  parentPort.postMessage({ latencies, failures })
})()
`

function healthPoller (url: string, intervalMs: number): { stop: () => Promise<{ latencies: number[], failures: number }> } {
  const worker = new Worker(POLLER, { eval: true, workerData: { url: `${url}/health`, intervalMs } })
  const result = new Promise<{ latencies: number[], failures: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    stop: async () => {
      worker.postMessage('stop')
      const out = await result
      await worker.terminate()
      return out
    }
  }
}

/** One upload on a fresh connection; its status, or 0 when the socket failed instead. */
async function postOnce (url: string, body: Buffer, contentType: string): Promise<number> {
  return await new Promise((resolve) => {
    const req = request(`${url}/api/v2/analyze/guest`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': contentType, 'content-length': body.length }
    }, (res) => {
      res.resume()
      res.once('end', () => resolve(res.statusCode ?? 0))
      res.once('error', () => resolve(0))
    })
    req.once('error', () => resolve(0))
    req.end(body)
  })
}

export async function runBurst (url: string, body: Buffer, contentType: string, size: number, healthIntervalMs: number): Promise<BurstFigures> {
  const poller = healthPoller(url, healthIntervalMs)
  // A few quiet samples first, so the poller is running before the uploads land.
  await new Promise((resolve) => setTimeout(resolve, 5 * healthIntervalMs))
  await lagMaxMs(url)
  const t0 = performance.now()
  const answers = await Promise.all(Array.from({ length: size }, async () => await postOnce(url, body, contentType)))
  const wallMs = performance.now() - t0
  const serverLagMaxMs = await lagMaxMs(url)
  const { latencies, failures } = await poller.stop()
  const statuses = new Map<number, number>()
  for (const status of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1)
  return { statuses, wallMs, health: { samples: latencies.length, p99: percentile(latencies, 99), max: Math.max(...latencies), failures }, serverLagMaxMs }
}
