import t from 'tap'
import { jittered, Watcher, type Timer } from '../../src/models/watch.js'

t.test('the poll interval is jittered ±20 %', async (t) => {
  t.equal(jittered(60_000, () => 0), 48_000)
  t.equal(jittered(60_000, () => 0.5), 60_000)
  t.equal(jittered(60_000, () => 0.999999), 72_000)
  const spread = Array.from({ length: 200 }, () => jittered(1000))
  t.ok(spread.every((ms) => ms >= 800 && ms <= 1200), 'within the band with Math.random')
  t.ok(new Set(spread).size > 50, 'and not in step')
})

// A clock the test advances: no wall-clock waits.
function fakeClock () {
  const pending: Array<{ fn: () => void, ms: number, cleared: boolean }> = []
  const setTimer = (fn: () => void, ms: number): Timer => {
    const entry = { fn, ms, cleared: false }
    pending.push(entry)
    return { clear: () => { entry.cleared = true } }
  }
  const live = () => pending.filter((p) => !p.cleared)
  const fire = () => {
    const next = live()[0]!
    next.cleared = true
    next.fn()
  }
  return { setTimer, live, fire }
}

t.test('checks on each jittered tick and at once on trigger; the next tick counts from the last check', async (t) => {
  const clock = fakeClock()
  let checks = 0
  const watcher = new Watcher({ intervalMs: 1000, check: async () => { checks++ }, random: () => 0, setTimer: clock.setTimer })
  watcher.start()
  watcher.start()
  t.same(clock.live().map((p) => p.ms), [800], 'one timer, jittered')
  clock.fire()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(checks, 1)
  t.equal(clock.live().length, 1, 'rescheduled')
  await watcher.trigger()
  t.equal(checks, 2, 'SIGHUP checks at once')
  t.equal(clock.live().length, 1, 'the pending tick was replaced, not doubled')
  watcher.stop()
  t.equal(clock.live().length, 0)
  await watcher.trigger()
  t.equal(checks, 2, 'nothing after stop()')
})

t.test('MODEL_POLL_S=0: no timer, but trigger still checks', async (t) => {
  const clock = fakeClock()
  let checks = 0
  const watcher = new Watcher({ intervalMs: 0, check: async () => { checks++ }, setTimer: clock.setTimer })
  watcher.start()
  t.equal(clock.live().length, 0)
  await watcher.trigger()
  t.equal(checks, 1)
  t.equal(clock.live().length, 0)
})

t.test('the default timer is real and does not hold the process open', async (t) => {
  let resolve!: () => void
  const checked = new Promise<void>((r) => { resolve = r })
  const watcher = new Watcher({ intervalMs: 10, check: async () => { resolve() } })
  // The watcher's timer is unref'd, so the test keeps the loop alive itself meanwhile.
  const alive = setInterval(() => {}, 1000)
  watcher.start()
  await checked
  // Let it schedule the next tick, so stop() has a real timer to clear.
  await new Promise((resolve) => setImmediate(resolve))
  clearInterval(alive)
  watcher.stop()
  t.pass('checked on its own timer')
})
