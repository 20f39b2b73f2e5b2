// Lowering the priority of every thread but the event loop's: the decisions with fake system
// calls (a thread that ends meanwhile, a refusal), then the real calls on this process's threads.
import { readdirSync } from 'node:fs'
import os from 'node:os'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { lowerOtherThreads, lowerThisThread, procPriority, type PriorityOps } from '../src/thread-priority.js'

/** Threads with nice values; `gone` have ended (ESRCH), `locked` refuse a change (EACCES). */
function fakeOps (nice: Record<number, number>, o: { self?: number, gone?: number[], locked?: number[] } = {}) {
  const calls: Array<[number, number]> = []
  const fail = (code: string) => Object.assign(new Error(code), { code })
  const ops: PriorityOps = {
    threads: () => Object.keys(nice).map(Number),
    self: () => o.self,
    get: (tid) => {
      if (o.gone?.includes(tid) === true) throw fail('ESRCH')
      return nice[tid]!
    },
    set: (tid, value) => {
      if (o.locked?.includes(tid) === true) throw fail('EACCES')
      calls.push([tid, value])
      nice[tid] = value
    }
  }
  return { ops, calls, nice }
}

t.test('every thread but the main one is raised to the nice value, none is lowered', async (t) => {
  const { ops, calls, nice } = fakeOps({ 100: 0, 101: 0, 102: 15, 103: 3 })
  t.equal(lowerOtherThreads(10, 100, ops), 0, 'all could be changed')
  t.same(calls, [[101, 10], [103, 10]], 'the main thread and a thread already nicer are left as they are')
  t.same(nice, { 100: 0, 101: 10, 102: 15, 103: 10 })
})

t.test('a thread that ended or refuses is counted, and the others are still lowered', async (t) => {
  const { ops, nice } = fakeOps({ 100: 0, 101: 0, 102: 0, 103: 0 }, { gone: [101], locked: [102] })
  t.equal(lowerOtherThreads(10, 100, ops), 2)
  t.same(nice, { 100: 0, 101: 0, 102: 0, 103: 10 })
})

t.test('nice 0 leaves every thread alone', async (t) => {
  const { ops, calls } = fakeOps({ 100: 0, 101: 0 }, { self: 101 })
  t.equal(lowerOtherThreads(0, 100, ops), 0)
  t.equal(lowerThisThread(0, ops), true)
  t.same(calls, [])
})

t.test('a thread lowers itself, or says it could not', async (t) => {
  const lowered = fakeOps({ 100: 0, 101: 0 }, { self: 101 })
  t.equal(lowerThisThread(5, lowered.ops), true)
  t.same(lowered.calls, [[101, 5]])
  t.equal(lowerThisThread(5, fakeOps({ 101: 0 }, { self: 101, locked: [101] }).ops), false, 'refused')
  t.equal(lowerThisThread(5, fakeOps({}).ops), false, 'no /proc: no thread id')
})

t.test('without /proc there are no threads to change', async (t) => {
  const ops = procPriority(t.testdir())
  t.same(ops.threads(), [])
  t.equal(ops.self(), undefined)
  t.equal(lowerOtherThreads(10, process.pid, ops), 0)
})

const linux = os.platform() === 'linux'

t.test('the real calls: a worker thread lowers itself; the main thread lowers the rest and not itself', { skip: !linux && 'needs /proc' }, async (t) => {
  const proc = procPriority()
  t.equal(proc.self(), process.pid, "the main thread's id is the pid")
  t.ok(proc.threads().includes(process.pid), 'the main thread is among the threads')
  const before = new Set(readdirSync('/proc/self/task').map(Number))
  const worker = new Worker(new URL('./fixtures/lower-self.worker.ts', import.meta.url))
  t.teardown(async () => { await worker.terminate() })
  const { lowered, tid } = await new Promise<{ lowered: boolean, tid: number }>((resolve) => worker.once('message', resolve))
  t.equal(lowered, true)
  t.not(tid, process.pid)
  t.ok(!before.has(tid), 'a new thread')
  t.equal(os.getPriority(tid), 4, 'the worker thread is at nice 4')
  t.equal(os.getPriority(process.pid), 0, 'and the main thread still at 0')

  t.equal(lowerOtherThreads(6), 0, 'every other thread could be changed')
  const others = readdirSync('/proc/self/task').map(Number).filter((id) => id !== process.pid)
  t.ok(others.length > 1, 'the worker and V8\'s helpers at least')
  t.same(others.filter((id) => os.getPriority(id) < 6), [], 'every other thread is at nice 6 or more')
  t.equal(os.getPriority(process.pid), 0, 'the main thread is left at 0')
})
