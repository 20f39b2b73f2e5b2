import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ErrorCode } from './errors.js'
import type { Readiness } from './readiness.js'

// Why a request was turned away, as the rejections counter labels it.
const REJECTION_REASON: Partial<Record<ErrorCode, string>> = {
  OVERLOADED: 'overloaded',
  NOT_READY: 'not_ready',
  RATE_LIMITED: 'rate_limited',
  INFERENCE_TIMEOUT: 'timeout',
  REQUEST_TIMEOUT: 'timeout',
  BAD_REQUEST: 'bad_input',
  NO_IMAGE: 'bad_input',
  PAYLOAD_TOO_LARGE: 'bad_input',
  IMAGE_TOO_LARGE: 'bad_input',
  UNSUPPORTED_MEDIA_TYPE: 'bad_input',
  UNDECODABLE_IMAGE: 'bad_input',
  UNSUITABLE_IMAGE: 'bad_input'
}

// Seconds; from a cached-decode 640×480 (~5 ms) to a pathological upload near the deadline.
const STAGE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The Prometheus metrics of one app (its own registry, so test apps do not share counters). */
export class Metrics {
  readonly registry = new Registry()
  // `version` is the model version that answered an analysis (absent on other routes), so a
  // canary and the primary can be compared side by side.
  readonly requests: Counter<'method' | 'route' | 'status' | 'version'>
  readonly requestDuration: Histogram<'method' | 'route' | 'status' | 'version'>
  readonly preprocess: Histogram<'version'>
  readonly inference: Histogram<'version'>
  readonly queueWait: Histogram<'version'>
  readonly rejections: Counter<'reason'>
  readonly #versions = new WeakMap<object, string>()

  constructor (readiness: Readiness) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status', 'version'], registers })
    this.requestDuration = new Histogram({
      name: 'http_request_duration_seconds', help: 'Time to answer, by route and status', labelNames: ['method', 'route', 'status', 'version'], buckets: STAGE_BUCKETS, registers
    })
    this.preprocess = new Histogram({ name: 'shine_preprocess_seconds', help: 'Sniff, decode and resize', labelNames: ['version'], buckets: STAGE_BUCKETS, registers })
    this.inference = new Histogram({ name: 'shine_inference_seconds', help: 'Model run time in a worker', labelNames: ['version'], buckets: STAGE_BUCKETS, registers })
    this.queueWait = new Histogram({ name: 'shine_queue_wait_seconds', help: 'Wait for a free worker (and tensor transfer)', labelNames: ['version'], buckets: STAGE_BUCKETS, registers })
    this.rejections = new Counter({ name: 'shine_rejections_total', help: 'Requests turned away, by reason', labelNames: ['reason'], registers })
    // Summed over the serving pools (the primary's, and the canary's while one serves).
    const pool = () => {
      if (readiness.engine === undefined) return undefined
      const all = readiness.slots.flatMap(({ engine }) => engine === undefined ? [] : [engine.pool.stats()])
      const sum = (k: 'queued' | 'workers' | 'inFlight' | 'restarts') => all.reduce((n, s) => n + s[k], 0)
      return { queued: sum('queued'), workers: sum('workers'), inFlight: sum('inFlight'), restarts: sum('restarts') }
    }
    new Gauge({ name: 'shine_queue_depth', help: 'Inferences waiting for a worker', registers, collect () { this.set(pool()?.queued ?? 0) } })
    new Gauge({
      name: 'shine_workers_busy', help: 'Workers running an inference', registers,
      collect () { const s = pool(); this.set(s === undefined ? 0 : Math.min(s.workers, s.inFlight - s.queued)) }
    })
    new Gauge({ name: 'shine_workers', help: 'Inference workers', registers, collect () { this.set(pool()?.workers ?? 0) } })
    new Gauge({ name: 'shine_worker_restarts', help: 'Workers replaced after a crash or timeout', registers, collect () { this.set(pool()?.restarts ?? 0) } })
    new Gauge({
      name: 'shine_model_info', help: 'The served models (value 1): the primary, and the canary while one serves', labelNames: ['slot', 'name', 'version', 'source'], registers,
      collect () {
        this.reset()
        if (readiness.engine === undefined) return
        for (const { name: slot, engine } of readiness.slots) {
          if (engine !== undefined) this.set({ slot, name: engine.model.spec.name, version: engine.model.spec.version, source: engine.model.source }, 1)
        }
      }
    })
    new Counter({
      name: 'shine_model_swaps_total', help: 'Model versions switched in (ok), refused (failed) or restarted for (restart), per slot', labelNames: ['result', 'slot'], registers,
      collect () {
        this.reset()
        for (const { name: slot, swaps } of readiness.slots) {
          for (const [result, count] of Object.entries(swaps)) this.inc({ result, slot }, count)
        }
      }
    })
    new Gauge({ name: 'shine_canary_percent', help: 'MODEL_CANARY_PERCENT: the share of clients the canary answers once it serves', registers, collect () { this.set(readiness.canaryPercent) } })
    new Gauge({ name: 'shine_model_load_seconds', help: 'Boot to ready: model resolve/download, verify, worker start and warm-up', registers, collect () { this.set(readiness.loadSeconds ?? 0) } })
    new Gauge({ name: 'shine_ready', help: '1 when /health answers 200', registers, collect () { this.set(readiness.status === 'ready' ? 1 : 0) } })
  }

  /** The model version that answered this request (the raw request: one per exchange). */
  answeredBy (request: object, version: string): void {
    this.#versions.set(request, version)
  }

  /** Labels for an answer: the version when a model answered it. */
  versionOf (request: object): { version?: string } {
    const version = this.#versions.get(request)
    return version === undefined ? {} : { version }
  }

  rejected (code: ErrorCode): void {
    const reason = REJECTION_REASON[code]
    if (reason !== undefined) this.rejections.inc({ reason })
  }
}
