import t from 'tap'
import { Leases } from '../../src/inference/leases.js'

t.test('idle resolves once every holder released; a double release counts once', async (t) => {
  const leases = new Leases<object>()
  const a = {}
  const b = {}
  await leases.idle(a)
  const first = leases.acquire(a)
  const second = leases.acquire(a)
  const other = leases.acquire(b)
  let idle = false
  const waiting = leases.idle(a).then(() => { idle = true })
  const alsoWaiting = leases.idle(a)
  first()
  first()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(idle, false, 'one holder left')
  t.equal(leases.held(a), 1)
  second()
  await Promise.all([waiting, alsoWaiting])
  t.equal(leases.held(a), 0)
  t.equal(leases.held(b), 1, 'held per item')
  other()
  t.equal(leases.held(b), 0)
})
