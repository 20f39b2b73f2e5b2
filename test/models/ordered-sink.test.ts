// OrderedSink on its own: bytes leave in file order whatever order the ranges arrive in.
import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import t from 'tap'
import { OrderedSink, planParts } from '../../src/models/ordered-sink.js'

function fakeFile () {
  const writes: Array<{ position: number, bytes: Buffer }> = []
  const file = {
    writev: async (buffers: Buffer[], position: number) => {
      const bytes = Buffer.concat(buffers)
      writes.push({ position, bytes })
      return { bytesWritten: bytes.length, buffers }
    },
    sync: async () => {}
  } as unknown as FileHandle
  return { file, writes }
}

t.test('planParts: one part for one stream or a small file, else parts of partSize', async (t) => {
  t.same(planParts(10, 1, 4).map((p) => [p.start, p.end]), [[0, 10]])
  t.same(planParts(4, 3, 4).map((p) => [p.start, p.end]), [[0, 4]])
  t.same(planParts(10, 3, 4).map((p) => [p.index, p.start, p.end]), [[0, 0, 4], [1, 4, 8], [2, 8, 10]])
})

t.test('ranges that arrive early wait; the hash and the file see bytes in order', async (t) => {
  const { file, writes } = fakeFile()
  const hash = createHash('sha256')
  const parts = planParts(9, 3, 3)
  const sink = new OrderedSink(file, [hash], parts)
  const [p0, p1, p2] = parts as [typeof parts[0], typeof parts[0], typeof parts[0]]

  let windowOpen = false
  const waiting = sink.headReaches(2).then(() => { windowOpen = true })
  await sink.headReaches(0)
  sink.push(p2, Buffer.from('ghi'))
  sink.complete(p2)
  sink.push(p1, Buffer.from('def'))
  sink.push(p0, Buffer.from('abc'))
  sink.complete(p0)
  await Promise.resolve()
  t.equal(windowOpen, false, 'head is at part 1: a worker waiting for part 2 still waits')
  sink.complete(p1)
  await waiting
  t.equal(windowOpen, true)
  await sink.finish()
  t.equal(Buffer.concat(writes.map((w) => w.bytes)).toString(), 'abcdefghi')
  t.equal(hash.digest('hex'), createHash('sha256').update('abcdefghi').digest('hex'))
})

t.test('release lets every waiting worker go (after a failure elsewhere)', async (t) => {
  const { file } = fakeFile()
  const sink = new OrderedSink(file, [], planParts(9, 3, 3))
  const waiting = [sink.headReaches(1), sink.headReaches(2)]
  sink.release()
  await Promise.all(waiting)
  t.pass('released')
})

t.test('past 8 MiB waiting for the disk, push hands back the pending writes to await', async (t) => {
  const { file } = fakeFile()
  const parts = planParts(10 << 20, 1, 1 << 20)
  const sink = new OrderedSink(file, [], parts)
  const chunk = Buffer.alloc(1 << 20)
  const waits = Array.from({ length: 10 }, () => sink.push(parts[0]!, chunk))
  t.same(waits.map((w) => w !== undefined), [false, false, false, false, false, false, false, false, true, true])
  await sink.finish()
})
