import t from 'tap'
import { toFixedResult } from '../../src/responses/fixed.js'
import { CONCERN_THRESHOLD, toHareRunResult, toModelInfo } from '../../src/responses/hare-run.js'
import { percentOf, severityOf } from '../../src/responses/severity.js'

const P = (pairs: Array<[string, number]>) => pairs.map(([label, confidence]) => ({ label, confidence }))

t.test('severity: the team\'s thresholds, edges included', async (t) => {
  t.same([0, 0.29999, 0.3, 0.69999, 0.7, 1].map(severityOf), ['low', 'low', 'medium', 'medium', 'high', 'high'])
  t.same([0, 0.12345, 0.5, 0.99999, 1].map(percentOf), [0, 12.3, 50, 100, 100])
})

t.test('hare-run: health score from P(healthy), concerns above the threshold, highest first', async (t) => {
  const r = toHareRunResult(P([['acne', 0.5], ['healthy', 0.25], ['redness', 0.15], ['bags', CONCERN_THRESHOLD], ['eczema', 0.0999]]))
  t.equal(r.health_score, 25)
  t.same(r.primary_concerns, ['acne', 'redness', 'bags'], 'healthy is never a concern; the threshold is inclusive')
  t.same(r.severity_levels, { acne: 'medium', redness: 'low', bags: 'low' })
  t.same(Object.keys(r.conditions), ['acne', 'healthy', 'redness', 'bags', 'eczema'], 'every label')
  t.same(r.conditions.acne, { confidence: 0.5, severity: 'medium' })
  t.same(r.conditions.eczema, { confidence: 0.0999, severity: 'low' })
})

t.test('hare-run: a confident healthy face has no concerns; a model without "healthy" has no score', async (t) => {
  const healthy = toHareRunResult(P([['healthy', 0.95], ['acne', 0.03], ['bags', 0.02]]))
  t.equal(healthy.health_score, 95)
  t.same(healthy.primary_concerns, [])
  t.same(healthy.severity_levels, {})
  const noHealthy = toHareRunResult(P([['class_1', 0.8], ['class_0', 0.2]]))
  t.equal(noHealthy.health_score, null)
  t.same(noHealthy.primary_concerns, ['class_1', 'class_0'])
  t.same(noHealthy.severity_levels, { class_1: 'high', class_0: 'low' })
})

t.test('model_info: an accuracy only when the manifest declares one', async (t) => {
  const base = { name: 'm', version: '1', demo: false, labels: ['a', 'b'] }
  t.same(toModelInfo(base), { name: 'm', version: '1', demo: false, classes: ['a', 'b'] })
  t.same(toModelInfo({ ...base, accuracy: 0.87 }), { name: 'm', version: '1', demo: false, classes: ['a', 'b'], declared_accuracy: 0.87 })
})

t.test('fixed: the top label, the top three and every prediction', async (t) => {
  const r = toFixedResult(P([['acne', 0.71234], ['bags', 0.2], ['healthy', 0.05], ['other', 0.03766]]))
  t.same(r, {
    primary_condition: 'acne',
    confidence: 0.71234,
    percentage: 71.2,
    severity: 'high',
    top_3_predictions: [
      { condition: 'acne', confidence: 0.71234, percentage: 71.2 },
      { condition: 'bags', confidence: 0.2, percentage: 20 },
      { condition: 'healthy', confidence: 0.05, percentage: 5 }
    ],
    all_predictions: { acne: 0.71234, bags: 0.2, healthy: 0.05, other: 0.03766 }
  })
  t.same(toFixedResult(P([['only', 1]])).top_3_predictions, [{ condition: 'only', confidence: 1, percentage: 100 }], 'fewer than three labels')
})
