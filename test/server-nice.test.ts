// BACKGROUND_NICE on the built server: after an analysis (so libuv's decode threads exist) every
// thread but the event loop's runs at the nice value, and so do the workers of a swapped-in
// version; at 0 every thread keeps the main thread's priority.
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { jpeg } from './fixtures/images.js'
import { writeTinyBundle } from './helpers/model.js'
import { healthOf, spawnServer, until, waitReady, type SpawnedServer } from './helpers/spawn-server.js'

// Field 19 of /proc/<pid>/task/<tid>/stat, counted after the parenthesised command name.
const niceOf = (pid: number, tid: number) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])

/** The main thread's nice value, and the other threads' by value: { 7: 18 } = 18 threads at 7. */
function niceValues (pid: number): { main: number, others: Record<number, number> } {
  const others: Record<number, number> = {}
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    if (tid === pid) continue
    try {
      const nice = niceOf(pid, tid)
      others[nice] = (others[nice] ?? 0) + 1
    } catch {} // the thread ended meanwhile
  }
  return { main: niceOf(pid, pid), others }
}

const analyzed = async (server: SpawnedServer, seed: number) => {
  const fd = new FormData()
  fd.append('image', new Blob([await jpeg({ width: 64, height: 64, seed })], { type: 'image/jpeg' }), 'p.jpg')
  const res = await fetch(`${server.url}/api/v2/analyze/guest`, { method: 'POST', body: fd })
  return { status: res.status, version: ((await res.json()) as { model?: { version: string } }).model?.version }
}

// What the test process runs at: the server inherits it, and a thread is never made less nice.
const base = os.getPriority()
const linux = os.platform() === 'linux'

t.test('BACKGROUND_NICE=7: every thread but the main one, workers of a new version included', { skip: !linux && 'needs /proc' }, async (t) => {
  const dir = t.testdir()
  const bundle = await writeTinyBundle(join(dir, 'model'), { seed: 1, version: 'local-1' })
  const server = await spawnServer(t, { MODEL_PATH: bundle.dir, MODEL_DIR: join(dir, 'cache'), MODEL_POLL_S: '0.2', MODEL_SWAP: 'live', BACKGROUND_NICE: '7' })
  await waitReady(server.url)
  const pid = server.child.pid!
  t.equal((await healthOf<{ threads: { backgroundNice: number } }>(server.url)).threads.backgroundNice, 7, '/health shows it')
  t.match(await analyzed(server, 1), { status: 200, version: 'local-1' })
  const lowered = Math.max(base, 7)
  const booted = niceValues(pid)
  t.equal(booted.main, base, 'the event loop keeps its priority')
  t.same(Object.keys(booted.others).map(Number), [lowered], `the ${booted.others[lowered]} other threads are all at ${lowered}`)

  await writeTinyBundle(bundle.dir, { seed: 2, version: 'local-2' })
  await until('local-2 served', async () => (await healthOf<{ model: { version: string } }>(server.url)).model.version === 'local-2')
  t.match(await analyzed(server, 2), { status: 200, version: 'local-2' })
  const swapped = niceValues(pid)
  t.equal(swapped.main, base)
  t.same(Object.keys(swapped.others).map(Number), [lowered], 'after the swap too: the new pool\'s threads')
  t.match(server.output(), /"backgroundNice":\{"nice":7,"notLowered":0\}/, 'the ready line says every thread was lowered')
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('BACKGROUND_NICE=0: no thread is changed', { skip: !linux && 'needs /proc' }, async (t) => {
  const dir = t.testdir()
  const bundle = await writeTinyBundle(join(dir, 'model'), { seed: 1 })
  const server = await spawnServer(t, { MODEL_PATH: bundle.dir, MODEL_DIR: join(dir, 'cache'), BACKGROUND_NICE: '0' })
  await waitReady(server.url)
  t.match(await analyzed(server, 1), { status: 200 })
  const values = niceValues(server.child.pid!)
  t.equal(values.main, base)
  t.same(Object.keys(values.others).map(Number), [base], 'every thread at the priority it started with')
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})
