import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

// Reads one sample's value from the Prometheus text format.
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([^{\s]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = (m[2] ?? '').split(',').filter((s) => s.length > 0)
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3])
  }
  return 0
}

t.test('/metrics counts add up after known traffic', async (t) => {
  const { app } = await testApp(t, { env: { RATE_LIMIT_MAX: '1000' } })
  const good = await img.jpeg({ width: 100, height: 80 })
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ method: 'POST', url: '/api/v2/analyze/guest', payload: form(good) })).statusCode, 200)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/api/v2/analyze/guest', payload: form(img.SVG) })).statusCode, 415)
  for (let i = 0; i < 2; i++) await app.inject('/health')
  await app.inject('/nowhere')

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const text = res.body
  const route = '/api/v2/analyze/guest'
  // Labelled by the version the analysis was routed to (a canary's answers apart from the primary's).
  const version = 'test-1'
  t.equal(sample(text, 'http_requests_total', { method: 'POST', route, status: '200', version }), 5)
  t.equal(sample(text, 'http_requests_total', { method: 'POST', route, status: '415', version }), 3)
  t.equal(sample(text, 'http_requests_total', { method: 'GET', route: '/health', status: '200' }), 2)
  t.equal(sample(text, 'http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1)
  t.equal(sample(text, 'http_request_duration_seconds_count', { method: 'POST', route, status: '200', version }), 5)
  t.equal(sample(text, 'shine_preprocess_seconds_count', { version }), 5, 'only analyses that reached the model')
  t.equal(sample(text, 'shine_inference_seconds_count', { version }), 5)
  t.equal(sample(text, 'shine_queue_wait_seconds_count', { version }), 5)
  t.ok(sample(text, 'shine_inference_seconds_sum', { version }) > 0)
  t.equal(sample(text, 'shine_rejections_total', { reason: 'bad_input' }), 3)
  t.equal(sample(text, 'shine_model_info', { slot: 'primary', name: 'tiny-test', version: 'test-1', source: 'local' }), 1)
  t.equal(sample(text, 'shine_canary_percent'), 0, 'no canary configured')
  t.equal(sample(text, 'shine_workers'), 2)
  t.equal(sample(text, 'shine_workers_busy'), 0)
  t.equal(sample(text, 'shine_queue_depth'), 0)
  t.equal(sample(text, 'shine_worker_restarts'), 0)
  t.equal(sample(text, 'shine_ready'), 1)
  t.ok(sample(text, 'shine_model_load_seconds') > 0)
  t.ok(sample(text, 'process_resident_memory_bytes') > 0, 'process metrics')
})

t.test('before the model is ready', async (t) => {
  const { app } = await testApp(t, { notReady: true })
  await app.inject({ method: 'POST', url: '/api/v2/analyze/guest', payload: form(img.SVG) })
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'shine_ready'), 0)
  t.equal(sample(text, 'shine_workers'), 0)
  t.equal(sample(text, 'shine_workers_busy'), 0)
  t.equal(sample(text, 'shine_model_load_seconds'), 0)
  t.equal(sample(text, 'shine_rejections_total', { reason: 'not_ready' }), 1)
  t.notMatch(text, /shine_model_info\{/)
})

t.test('shine_model_swaps_total counts each result the swapper recorded', async (t) => {
  const { app, readiness } = await testApp(t)
  let text = (await app.inject('/metrics')).body
  const slot = 'primary'
  t.equal(sample(text, 'shine_model_swaps_total', { result: 'ok', slot }), 0)
  readiness.primary.swaps.ok += 2
  readiness.primary.swaps.failed += 1
  text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'shine_model_swaps_total', { result: 'ok', slot }), 2)
  t.equal(sample(text, 'shine_model_swaps_total', { result: 'failed', slot }), 1)
  t.equal(sample(text, 'shine_model_swaps_total', { result: 'restart', slot }), 0)
  t.notMatch(text, /slot="canary"/, 'no canary slot without a canary')
})
