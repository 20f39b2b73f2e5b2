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

t.test('close() fails waiting tasks, refuses new ones and resolves only when no task runs', async (t) => {
  const { started, start } = manual()
  const d = new Dispatcher({ concurrency: 2, maxWaiting: 5, timeoutMs: 60_000, start })
  const gone = new AbortController()
  const abandoned = d.run(1, gone.signal)
  const kept = d.run(2)
  const waiting = d.run(3)
  gone.abort()
  await t.rejects(abandoned, { name: 'AbortError' })
  let closed = false
  const closing = d.close(() => new Error('pool closed')).then(() => { closed = true })
  await t.rejects(waiting, /pool closed/, 'the waiting task is failed with the reason')
  await t.rejects(d.run(4), /pool closed/, 'a new task is refused')
  const again = d.close(() => new Error('ignored: the first reason stays'))
  t.same([d.running, d.waiting], [2, 0])
  started[1]!.finish('two')
  t.equal(await kept, 'two', 'a running task with a caller still answers it')
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(closed, 'the abandoned task still runs')
  started[0]!.finish('late')
  await closing
  await again
  t.same([d.running, started.length], [0, 2], 'the waiting task never started')
  await t.rejects(d.run(5), /pool closed/)
  await d.close(() => new Error('idle'))
  t.pass('closing an idle dispatcher resolves at once')
})
