import t from 'tap'
import { Dispatcher } from '../../src/inference/dispatcher.js'

// Tasks are promises the test settles by hand, so ordering is exact (no timing).
function manual () {
  const started: Array<{ task: number, finish: (v: string) => void, fail: (e: Error) => void }> = []
  const start = async (task: number) => await new Promise<string>((resolve, reject) => { started.push({ task, finish: resolve, fail: reject }) })
  return { started, start }
}

t.test('runs up to `concurrency` at once, FIFO, and refuses beyond capacity', async (t) => {
  const { started, start } = manual()
  const d = new Dispatcher({ concurrency: 2, maxWaiting: 1, timeoutMs: 60_000, start })
  const results = [d.run(1), d.run(2), d.run(3)]
  t.same(started.map((s) => s.task), [1, 2])
  t.same([d.running, d.waiting, d.capacity], [2, 1, 3])
  await t.rejects(d.run(4), { code: 'OVERLOADED' })
  started[0]!.finish('one')
  t.equal(await results[0], 'one')
  t.same(started.map((s) => s.task), [1, 2, 3], 'the waiting task starts when a slot frees')
  started[1]!.fail(new Error('boom'))
  await t.rejects(results[1]!, /boom/)
  started[2]!.finish('three')
  t.equal(await results[2], 'three')
  t.same([d.running, d.waiting], [0, 0])
})

t.test('a deadline drops a waiting task and abandons a running one without freeing its slot early', async (t) => {
  const { started, start } = manual()
  const d = new Dispatcher({ concurrency: 1, maxWaiting: 5, timeoutMs: 20, start })
  const running = d.run(1)
  const waiting = d.run(2)
  await t.rejects(running, { code: 'INFERENCE_TIMEOUT' })
  await t.rejects(waiting, { code: 'INFERENCE_TIMEOUT' })
  t.same([d.running, d.waiting], [1, 0], 'the worker is still busy; the waiting task is gone')
  started[0]!.finish('late')
  await new Promise((resolve) => setImmediate(resolve))
  t.same([d.running, d.waiting], [0, 0])
  t.same(started.map((s) => s.task), [1], 'the dropped task never started')
})

t.test('an aborted caller is answered at once; an already-aborted one is never queued', async (t) => {
  const { started, start } = manual()
  const d = new Dispatcher({ concurrency: 1, maxWaiting: 5, timeoutMs: 60_000, start })
  await t.rejects(d.run(0, AbortSignal.abort()), { name: 'AbortError' })
  const a = new AbortController()
  const b = new AbortController()
  const first = d.run(1, a.signal)
  const second = d.run(2, b.signal)
  b.abort()
  await t.rejects(second, { name: 'AbortError' })
  a.abort()
  await t.rejects(first, { name: 'AbortError' })
  t.equal(d.running, 1, 'the running task keeps its slot until it ends')
  started[0]!.finish('ignored')
  const third = d.run(3)
  await new Promise((resolve) => setImmediate(resolve))
  started.at(-1)!.finish('three')
  t.equal(await third, 'three')
})
