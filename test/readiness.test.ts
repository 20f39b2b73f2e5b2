import t from 'tap'
import { Admission } from '../src/admission.js'
import { Readiness } from '../src/readiness.js'

t.test('stopping is final: late boot news does not change what /health says', async (t) => {
  const r = new Readiness()
  r.stopping()
  r.starting('downloading the model', { downloadedBytes: 1, totalBytes: 2 })
  r.failed('pool closed during warm-up')
  r.ready({ model: { spec: {} as never, source: 'local' }, pool: {} as never })
  t.equal(r.status, 'stopping')
  t.equal(r.reason, 'shutting down')
  t.equal(r.engine, undefined)
  t.equal(r.progress, undefined)
  await r.close()
})

t.test('admission: a fixed number of slots, each released once', async (t) => {
  const a = new Admission(2)
  const first = a.tryEnter()!
  const second = a.tryEnter()!
  t.equal(a.tryEnter(), undefined, 'full')
  first()
  first()
  const third = a.tryEnter()
  t.ok(third, 'a double release freed one slot, not two')
  t.equal(a.tryEnter(), undefined)
  second()
  third!()
  t.equal(a.capacity, 2)
})

t.test('replace switches the engine in one step and tracks its pool; closed pools are forgotten', async (t) => {
  const closed: string[] = []
  const pool = (name: string) => ({ close: async () => { closed.push(name) } }) as never
  const engine = (name: string) => ({ model: { spec: { version: name } as never, source: 'local' as const }, pool: pool(name) })
  const r = new Readiness()
  const a = engine('a')
  t.equal(r.lease(), undefined, 'nothing to lease before ready')
  r.ready(a)
  const lease = r.lease()!
  t.equal(lease.engine, a)
  t.equal(r.leased(a), 1)
  const b = engine('b')
  t.equal(r.replace(b), a, 'returns the engine it replaced')
  t.equal(r.engine, b)
  lease.release()
  await r.drained(a)
  r.untrackPool(a.pool)
  r.stopping('restarting to load model version c (MODEL_SWAP=restart)')
  t.equal(r.reason, 'restarting to load model version c (MODEL_SWAP=restart)')
  t.equal(r.replace(engine('c')), undefined, 'nothing is switched in while stopping')
  await r.close()
  t.same(closed, ['b'], 'close() closes every tracked pool, not the one already closed')
  r.trackPool(pool('late'))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(closed, ['b', 'late'], 'a pool started after close() is closed at once')
})
