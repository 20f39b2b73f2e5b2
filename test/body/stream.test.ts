import { PassThrough } from 'node:stream'
import t from 'tap'
import { readChunks, sizeOf } from '../../src/body/stream.js'

const limits = { maxBytes: 10, tooLarge: 'too large', stallMs: 200 }

t.test('chunks are handed over as they come; the body ends', async (t) => {
  const s = new PassThrough()
  const got: string[] = []
  const done = readChunks(s, (c) => got.push(c.toString()), limits)
  s.write('ab')
  s.end('cd')
  await done
  t.same(got.join(''), 'abcd')
})

t.test('each way reading stops: too large, stalled, a throw, an error, a close without end', async (t) => {
  const over = new PassThrough()
  const a = readChunks(over, () => {}, limits)
  over.write('0123456789x')
  await t.rejects(a, { code: 'PAYLOAD_TOO_LARGE', message: 'too large' })
  t.ok(over.isPaused(), 'paused, not destroyed: the answer can still be sent')

  const quiet = new PassThrough()
  await t.rejects(readChunks(quiet, () => {}, limits), { code: 'REQUEST_TIMEOUT', message: /No data arrived for 0.2 s/ })

  const thrower = new PassThrough()
  const b = readChunks(thrower, () => { throw new Error('bad chunk') }, limits)
  thrower.write('x')
  await t.rejects(b, { message: 'bad chunk' })

  const failing = new PassThrough()
  const c = readChunks(failing, () => {}, limits)
  failing.destroy(new Error('aborted'))
  await t.rejects(c, { message: 'aborted' })

  const closed = new PassThrough()
  const d = readChunks(closed, () => {}, limits)
  closed.destroy()
  await t.rejects(d, { message: /closed the connection/ })
})

t.test('sizes as people read them', async (t) => {
  t.equal(sizeOf(100), '100 bytes')
  t.equal(sizeOf(25 * 1048576), '25 MB')
  t.equal(sizeOf(60 * 1024), '60 KB')
  t.equal(sizeOf(1.25 * 1048576), '1.3 MB')
})
