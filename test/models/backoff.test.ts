import t from 'tap'
import { backoffDelay, retrying } from '../../src/models/backoff.js'

t.test('backoff doubles per attempt, with equal jitter, up to the cap', async (t) => {
  t.equal(backoffDelay(1, 100, 10_000, () => 0), 50, 'never less than half the ceiling')
  t.equal(backoffDelay(1, 100, 10_000, () => 1), 100)
  t.equal(backoffDelay(4, 100, 10_000, () => 1), 800)
  t.equal(backoffDelay(20, 100, 10_000, () => 1), 10_000, 'capped')
  t.equal(backoffDelay(1000, 100, 10_000, () => 0.5), 7500, 'a huge attempt count does not overflow')
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(3, 100, 10_000)))
  t.ok(spread.size > 10, 'jittered by default')
})

t.test('retrying: retries what is retryable, up to maxAttempts', async (t) => {
  const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 }
  let calls = 0
  const seen: number[] = []
  t.equal(await retrying(async () => { if (++calls < 3) throw new Error('flaky'); return 'ok' }, policy, () => true, (attempt) => seen.push(attempt)), 'ok')
  t.same(seen, [1, 2])

  calls = 0
  await t.rejects(retrying(async () => { calls++; throw new Error('always') }, policy, () => true), { message: 'always' })
  t.equal(calls, 3, 'gives up after maxAttempts')

  calls = 0
  await t.rejects(retrying(async () => { calls++; throw new Error('fatal') }, policy, () => false), { message: 'fatal' })
  t.equal(calls, 1, 'a non-retryable error is thrown at once')
})
