// The August routes, field by field, against the v2 predictions of the same photo.
import t from 'tap'
import * as img from '../fixtures/images.js'
import { testApp } from '../helpers/app.js'
import { SKIN_LABELS } from '../helpers/model.js'

interface P { label: string, confidence: number }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const severity = (c: number) => c < 0.3 ? 'low' : c < 0.7 ? 'medium' : 'high'

async function analyse (app: Awaited<ReturnType<typeof testApp>>['app'], url: string, image: string) {
  const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ image }) })
  t.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 300)}`)
  return { body: res.json(), requestId: res.headers['x-request-id'] }
}

t.test('v6 analyze-hare-run: status, analysis_type, model_info and result from the predictions', async (t) => {
  const { app } = await testApp(t, { bundle: { manifest: { accuracy: 0.87 } } })
  const image = (await img.jpeg({ width: 100, height: 80, seed: 9 })).toString('base64')
  const predictions: P[] = (await analyse(app, '/api/v2/analyze/guest', image)).body.predictions
  const { body, requestId } = await analyse(app, '/api/v6/skin/analyze-hare-run', image)
  t.same(Object.keys(body).sort(), ['analysis_id', 'analysis_type', 'model_info', 'requestId', 'result', 'status', 'success', 'timestamp'])
  t.equal(body.success, true)
  t.match(body.analysis_id, UUID)
  t.match(body.timestamp, ISO)
  t.equal(body.requestId, requestId)
  t.equal(body.status, 'success')
  t.equal(body.analysis_type, 'skin_condition_classification')
  t.same(body.model_info, { name: 'tiny-test', version: 'test-1', demo: false, classes: SKIN_LABELS, declared_accuracy: 0.87 })

  const { result } = body
  t.same(Object.keys(result).sort(), ['conditions', 'health_score', 'primary_concerns', 'severity_levels'])
  const healthy = predictions.find((p) => p.label === 'healthy')!
  t.equal(result.health_score, Math.round(healthy.confidence * 1000) / 10, '100 × P(healthy)')
  t.ok(result.health_score >= 0 && result.health_score <= 100)
  const concerns = predictions.filter((p) => p.label !== 'healthy' && p.confidence >= 0.1)
  t.ok(concerns.length > 0, 'this photo has concerns (so the check below is not vacuous)')
  t.same(result.primary_concerns, concerns.map((p) => p.label), 'highest first')
  t.same(result.severity_levels, Object.fromEntries(concerns.map((p) => [p.label, severity(p.confidence)])))
  t.same(result.conditions, Object.fromEntries(predictions.map((p) => [p.label, { confidence: p.confidence, severity: severity(p.confidence) }])))
})

t.test('v6 without a declared accuracy or a healthy label', async (t) => {
  const labels = ['a', 'b', 'c']
  const { app } = await testApp(t, { bundle: { labels } })
  const { body } = await analyse(app, '/api/v6/skin/analyze-hare-run', (await img.png({ width: 64, height: 64 })).toString('base64'))
  t.same(body.model_info, { name: 'tiny-test', version: 'test-1', demo: false, classes: labels }, 'no accuracy invented')
  t.equal(body.result.health_score, null)
  t.same(Object.keys(body.result.conditions).sort(), labels)
})

t.test('v5 analyze-fixed: the top label, top 3 and all predictions', async (t) => {
  const { app } = await testApp(t)
  const image = `data:image/jpeg;base64,${(await img.jpeg({ width: 90, height: 120, seed: 4 })).toString('base64')}`
  const predictions: P[] = (await analyse(app, '/api/v2/analyze/guest', image)).body.predictions
  const { body, requestId } = await analyse(app, '/api/v5/skin/analyze-fixed', image)
  t.same(Object.keys(body).sort(), ['all_predictions', 'analysis_id', 'confidence', 'model', 'percentage', 'primary_condition',
    'requestId', 'severity', 'status', 'success', 'timestamp', 'top_3_predictions'])
  t.match(body, { success: true, status: 'success', requestId, model: { name: 'tiny-test', version: 'test-1', demo: false } })
  t.match(body.analysis_id, UUID)
  t.match(body.timestamp, ISO)
  const top = predictions[0]!
  t.equal(body.primary_condition, top.label)
  t.equal(body.confidence, top.confidence)
  t.equal(body.percentage, Math.round(top.confidence * 1000) / 10)
  t.equal(body.severity, severity(top.confidence))
  t.same(body.top_3_predictions, predictions.slice(0, 3).map((p) => ({ condition: p.label, confidence: p.confidence, percentage: Math.round(p.confidence * 1000) / 10 })))
  t.same(body.all_predictions, Object.fromEntries(predictions.map((p) => [p.label, p.confidence])))
})
