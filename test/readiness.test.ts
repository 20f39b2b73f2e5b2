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
