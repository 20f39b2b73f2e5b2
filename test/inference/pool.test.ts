import { readdirSync } from 'node:fs'
import os from 'node:os'
import t, { type Test } from 'tap'
import { buildTinyClassifier } from '../../scripts/onnx-builder.js'
import { writeBundle } from '../../scripts/bundle-writer.js'
import { classifyError } from '../../src/errors.js'
import { toTensor, type TensorSpec } from '../../src/imaging/tensor.js'
import { createPool, POOL_CLOSED_MESSAGE, type PoolOptions } from '../../src/inference/pool.js'
import { SLOW_SIZE, writeSlowBundle, writeTinyBundle, TINY_SIZE } from '../helpers/model.js'

const dims = [1, 3, TINY_SIZE, TINY_SIZE]
const rgbOf = (spec: TensorSpec) => new Uint8Array(3 * spec.width * spec.height).fill(128)
const tensor = (value: number, size = 3 * TINY_SIZE * TINY_SIZE) => new Float32Array(size).fill(value)

async function pool (t: Test, o: Partial<PoolOptions> = {}) {
  const bundle = await writeTinyBundle(t.testdir())
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 2, maxQueue: 16, timeoutMs: 30_000, ...o })
  t.teardown(async () => await p.close())
  return p
}

t.test('two workers run inferences concurrently with identical results (onnxruntime#24486 guard)', async (t) => {
  const p = await pool(t, { maxQueue: 64 })
  await p.warmUp(dims)
  const results = await Promise.all(Array.from({ length: 64 }, async (_, i) => await p.infer(tensor((i % 4) / 4), dims)))
  t.equal(new Set(results.map((r) => r.threadId)).size, 2, 'both workers took tasks')
  for (const r of results) t.same(r.dims, [1, 8])
  for (let i = 4; i < results.length; i++) t.same(Array.from(results[i]!.data), Array.from(results[i % 4]!.data), `task ${i} matches task ${i % 4}`)
  t.notSame(Array.from(results[0]!.data), Array.from(results[1]!.data), 'different inputs give different outputs')
  t.equal(p.stats().workers, 2)
  t.ok(p.stats().completed >= 64)
})

t.test('a decoded photo\'s pixels become the same tensor in the worker as toTensor gives; the caller\'s pixels stay intact', async (t) => {
  const p = await pool(t)
  const spec: TensorSpec = { layout: 'NCHW', width: TINY_SIZE, height: TINY_SIZE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
  for (const channels of ['RGB', 'BGR'] as const) {
    const rgb = Buffer.from(Array.from({ length: 3 * TINY_SIZE * TINY_SIZE }, (_, i) => (i * 37) % 256))
    const viaPixels = await p.inferPixels(rgb, { ...spec, channels })
    const viaTensor = await p.infer(toTensor(rgb, { ...spec, channels }), dims)
    t.same(Array.from(viaPixels.data), Array.from(viaTensor.data), `${channels}: same output`)
    t.equal(rgb.length, 3 * TINY_SIZE * TINY_SIZE, `${channels}: the caller's buffer is not detached`)
  }
  const other = await p.inferPixels(Buffer.alloc(3 * TINY_SIZE * TINY_SIZE, 200), spec)
  t.notSame(Array.from(other.data), Array.from((await p.inferPixels(Buffer.alloc(3 * TINY_SIZE * TINY_SIZE, 10), spec)).data), 'different pixels, different outputs')
  await t.rejects(p.inferPixels(Buffer.alloc(5), spec), /expected \d+ RGB bytes/, 'pixels of the wrong size are refused by the worker, which keeps serving')
  t.equal((await p.inferPixels(rgbOf(spec), spec)).data.length, 8)
})

// This test process's threads at a nice value (the pool's workers are threads of it).
const threadsAt = (nice: number) => readdirSync('/proc/self/task').map(Number).filter((tid) => os.getPriority(tid) === nice)

t.test('each worker lowers itself to `nice`, a replacement for a crashed one too', { skip: os.platform() !== 'linux' && 'needs /proc' }, async (t) => {
  const p = await pool(t, { nice: 3, testHooks: true })
  await p.warmUp(dims)
  // The workers, and any thread they started (the first session in a process starts ONNX
  // Runtime's own); the main thread stays.
  const before = threadsAt(3)
  t.ok(before.length >= 2, `the two workers at least (${before.length})`)
  t.notOk(before.includes(process.pid))
  await t.rejects(p.crashForTest(), /exited with code: 70/)
  await p.warmUp(dims)
  t.equal(p.stats().restarts, 1)
  const after = threadsAt(3)
  t.equal(after.filter((tid) => !before.includes(tid)).length, 1, 'the replacement is a new thread at nice 3, with nobody else lowering it')
  t.equal(before.filter((tid) => !after.includes(tid)).length, 1, 'and the crashed worker\'s thread is gone')
})

t.test('without `nice` the workers keep the priority of the thread that started them', { skip: os.platform() !== 'linux' && 'needs /proc' }, async (t) => {
  const p = await pool(t)
  await p.warmUp(dims)
  t.same(readdirSync('/proc/self/task').map(Number).filter((tid) => os.getPriority(tid) !== os.getPriority(process.pid)), [])
})

t.test('the tensor is transferred, not copied', async (t) => {
  const p = await pool(t)
  const input = tensor(0.5)
  const result = p.infer(input, dims)
  t.equal(input.byteLength, 0, 'the caller\'s buffer was detached by the transfer')
  t.equal((await result).data.length, 8)
})

t.test('describe reports the model\'s own inputs and outputs', async (t) => {
  const p = await pool(t)
  t.same(await p.describe(), {
    inputs: [{ name: 'input', dims: ['N', 3, TINY_SIZE, TINY_SIZE] }],
    outputs: [{ name: 'logits', dims: ['N', 8] }]
  })
})

t.test('a full queue is refused at once and maps to OVERLOADED', async (t) => {
  // A big input makes each task slow enough that the queue fills.
  const size = 512
  const dir = t.testdir()
  const bundle = await writeBundle(dir, buildTinyClassifier({ seed: 1, classes: 2, size, layout: 'NCHW' }), { name: 'big', version: '1' })
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 1, maxQueue: 2, timeoutMs: 30_000 })
  t.teardown(async () => await p.close())
  const settled = await Promise.allSettled(Array.from({ length: 12 }, async () => await p.infer(tensor(0.1, 3 * size * size), [1, 3, size, size])))
  const refused = settled.filter((s) => s.status === 'rejected')
  t.equal(refused.length, 12 - 3, 'one running and two waiting are admitted')
  for (const r of refused) t.equal(classifyError((r as PromiseRejectedResult).reason).code, 'OVERLOADED')
  t.equal(settled.filter((s) => s.status === 'fulfilled').length, 12 - refused.length, 'the rest completed')
})

t.test('an inference over its deadline is INFERENCE_TIMEOUT; its worker is left to finish, not killed', async (t) => {
  const size = 1024
  const bundle = await writeBundle(t.testdir(), buildTinyClassifier({ seed: 1, classes: 2, size, layout: 'NCHW' }), { name: 'slow', version: '1' })
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 1, maxQueue: 4, timeoutMs: 1 })
  t.teardown(async () => await p.close())
  await t.rejects(p.infer(tensor(0.2, 3 * size * size), [1, 3, size, size]), { name: 'AppError', code: 'INFERENCE_TIMEOUT' })
  t.equal(p.stats().inFlight, 1, 'the slot stays taken while the worker still runs')
  while (p.stats().inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(p.stats().restarts, 0, 'terminating a worker inside onnxruntime would abort the process')
})

t.test('a caller that aborts gets an AbortError and its queued task is dropped', async (t) => {
  const p = await pool(t, { workers: 1 })
  await p.warmUp(dims)
  const gone = new AbortController()
  gone.abort()
  await t.rejects(p.infer(tensor(0), dims, gone.signal), { name: 'AbortError' })
  const leaving = new AbortController()
  const running = p.infer(tensor(0.1), dims)
  const queued = p.infer(tensor(0.2), dims, leaving.signal)
  t.equal(p.stats().queued, 1)
  leaving.abort()
  await t.rejects(queued, { name: 'AbortError' })
  t.equal(p.stats().queued, 0, 'removed from the queue at once')
  t.equal((await running).data.length, 8)
  t.equal((await p.infer(tensor(0), dims)).data.length, 8, 'still serving')
})

t.test('a model that cannot load fails its tasks instead of hanging', async (t) => {
  const p = createPool({ modelFile: '/nonexistent/model.onnx', intraOpThreads: 1, workers: 1, maxQueue: 4, timeoutMs: 30_000 })
  t.teardown(async () => await p.close())
  await t.rejects(p.warmUp(dims))
})

t.test('a caller that leaves while its inference runs does not get the worker killed', async (t) => {
  // Terminating a worker inside session.run aborted the whole process (Napi::Error → SIGABRT).
  const size = 1024
  const bundle = await writeBundle(t.testdir(), buildTinyClassifier({ seed: 1, classes: 2, size, layout: 'NCHW' }), { name: 'slow', version: '1' })
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 1, maxQueue: 4, timeoutMs: 30_000 })
  t.teardown(async () => await p.close())
  const big = [1, 3, size, size]
  await p.warmUp(big)
  for (let i = 0; i < 5; i++) {
    const gone = new AbortController()
    const pending = p.infer(tensor(0.3, 3 * size * size), big, gone.signal)
    await new Promise((resolve) => setTimeout(resolve, 2))
    gone.abort()
    await t.rejects(pending, { name: 'AbortError' })
  }
  while (p.stats().inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(p.stats().restarts, 0)
  t.equal((await p.infer(tensor(0.3, 3 * size * size), big)).data.length, 2)
})

t.test('close() waits for abandoned inferences on two workers; waiting and new tasks get NOT_READY', async (t) => {
  // Before the fix Piscina terminated the second worker mid-run here and the process aborted;
  // test/inference/pool-close.test.ts repeats this in a child process, which survives an abort.
  const bundle = await writeSlowBundle(t.testdir())
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 2, maxQueue: 8, timeoutMs: 30_000 })
  const slow = [1, 3, SLOW_SIZE, SLOW_SIZE]
  await p.warmUp(slow)
  const callers = Array.from({ length: 3 }, () => new AbortController())
  const pending = callers.map((c) => p.infer(tensor(0.3, 3 * SLOW_SIZE * SLOW_SIZE), slow, c.signal))
  for (const c of callers.slice(0, 2)) c.abort()
  await t.rejects(pending[0]!, { name: 'AbortError' })
  await t.rejects(pending[1]!, { name: 'AbortError' })
  t.match(p.stats(), { running: 2, queued: 1 }, 'both callers left; their tasks still run')
  const closing = p.close()
  await t.rejects(pending[2]!, { name: 'AppError', code: 'NOT_READY', message: POOL_CLOSED_MESSAGE }, 'the waiting task is dropped')
  await t.rejects(p.infer(tensor(0), slow), { code: 'NOT_READY' }, 'a new task is refused')
  t.equal(p.stats().running, 2, 'close() has not ended the running tasks')
  await closing
  t.match(p.stats(), { running: 0, queued: 0, restarts: 0 }, 'close resolved after both finished; no worker was replaced')
})

t.test('close() past its deadline rejects and leaves the running worker alone; a second close() waits again', async (t) => {
  const bundle = await writeSlowBundle(t.testdir(), 48)
  const p = createPool({ modelFile: bundle.modelPath, intraOpThreads: 1, workers: 1, maxQueue: 2, timeoutMs: 30_000, closeTimeoutMs: 1 })
  const slow = [1, 3, SLOW_SIZE, SLOW_SIZE]
  await p.warmUp(slow)
  const gone = new AbortController()
  const abandoned = p.infer(tensor(0.3, 3 * SLOW_SIZE * SLOW_SIZE), slow, gone.signal)
  gone.abort()
  await t.rejects(abandoned, { name: 'AbortError' })
  await t.rejects(p.close(), { message: /^pool not closed after 1 ms \(\d inference\(s\) still running\); its workers are left to finish/ })
  t.equal(p.stats().restarts, 0, 'the worker was not terminated')
  await p.close(60_000)
  t.match(p.stats(), { running: 0, restarts: 0 }, 'the second close() waited for the task, then closed')
})
