import t from 'tap'
import { Admission } from '../src/admission.js'
import { inCanary } from '../src/inference/canary.js'
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

const fakePool = (closed: string[], name: string) => ({ close: async () => { closed.push(name) } }) as never
const fakeEngine = (closed: string[], name: string) => ({ model: { spec: { version: name } as never, source: 'local' as const }, pool: fakePool(closed, name) })

t.test('replace switches the engine in one step and tracks its pool; closed pools are forgotten', async (t) => {
  const closed: string[] = []
  const engine = (name: string) => fakeEngine(closed, name)
  const r = new Readiness()
  const a = engine('a')
  t.equal(r.lease(), undefined, 'nothing to lease before ready')
  t.notOk(r.replace(r.primary, a), 'nothing is switched in before ready')
  r.ready(a)
  const lease = r.lease()!
  t.equal(lease.engine, a)
  t.equal(r.primary.leased(a), 1)
  const b = engine('b')
  t.ok(r.replace(r.primary, b))
  t.equal(r.engine, b)
  lease.release()
  await r.primary.drained(a)
  r.untrackPool(a.pool)
  r.stopping('restarting to load model version c (MODEL_SWAP=restart)')
  t.equal(r.reason, 'restarting to load model version c (MODEL_SWAP=restart)')
  t.notOk(r.replace(r.primary, engine('c')), 'nothing is switched in while stopping')
  t.equal(r.engine, b)
  await r.close()
  t.same(closed, ['b'], 'close() closes every tracked pool, not the one already closed')
  r.trackPool(fakePool(closed, 'late'))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(closed, ['b', 'late'], 'a pool started after close() is closed at once')
})

t.test('a canary slot takes the analyses of the clients in its share once it serves', async (t) => {
  const closed: string[] = []
  const none = new Readiness()
  t.equal(none.canary, undefined, 'no canary slot unless one is configured')
  t.same(none.slots.map((s) => s.name), ['primary'])

  const r = new Readiness({ canaryPercent: 30 })
  t.same(r.slots.map((s) => s.name), ['primary', 'canary'])
  const primary = fakeEngine(closed, 'p')
  r.ready(primary)
  const clients = Array.from({ length: 200 }, (_, i) => `id:user-${i}`)
  t.same(clients.filter((c) => r.lease(c)!.engine !== primary), [], 'every client on the primary while the canary slot is empty')

  t.equal(r.canary!.lease(), undefined, 'an empty slot has nothing to lease')
  const canary = fakeEngine(closed, 'c')
  t.ok(r.replace(r.canary!, canary))
  t.equal(r.engine, primary, 'the canary never becomes the engine readiness reports')
  const answered = clients.map((c) => [c, r.lease(c)!.engine] as const)
  const toCanary = answered.filter(([, e]) => e === canary).map(([c]) => c)
  t.same(toCanary, clients.filter((c) => inCanary(c, 30)), 'exactly the clients in the share go to the canary')
  t.ok(toCanary.length > 0 && toCanary.length < clients.length)
  t.same(clients.map((c) => r.lease(c)!.engine === canary), clients.map((c) => toCanary.includes(c)), 'the same clients again: the same models')
  t.equal(r.lease()!.engine, primary, 'an analysis with no client key goes to the primary')
  t.equal(r.canary!.leased(canary), toCanary.length * 2)
  await r.close()
  t.same(closed.sort(), ['c', 'p'], 'close() closes the canary pool too')
})
