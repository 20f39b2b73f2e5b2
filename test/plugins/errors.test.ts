import Fastify from 'fastify'
import t from 'tap'
import errors, { drainsAfterAnswer } from '../../src/plugins/errors.js'

t.test('an error after the client left is logged as such, not as a failure', async (t) => {
  const lines: Array<{ level: number, msg: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(async () => await app.close())
  await app.register(errors)
  app.get('/leave', async (request, reply) => {
    const closed = new Promise((resolve) => reply.raw.once('close', resolve))
    request.raw.socket.destroy()
    await closed
    throw new Error('the caller stopped waiting')
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await t.rejects(fetch(`${base}/leave`))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(lines.some((l) => l.msg === 'client went away' && l.level === 30), 'info: client went away')
  t.notOk(lines.some((l) => l.level >= 50), 'nothing at error level')
})

t.test('an unexpected error: 500 with our message, the full error in the log at error level', async (t) => {
  const lines: Array<{ level: number, msg: string, err?: { message: string }, reqId?: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(async () => await app.close())
  await app.register(errors)
  app.get('/bug', async () => { throw new TypeError('cannot read /srv/app/secret of undefined') })
  const res = await app.inject('/bug')
  t.equal(res.statusCode, 500)
  t.equal(res.json().error.code, 'INTERNAL')
  t.notMatch(res.body, /secret|TypeError/)
  const logged = lines.find((l) => l.msg === 'request failed')
  t.equal(logged?.level, 50)
  t.match(logged?.err?.message, /secret/, 'the log keeps the detail')
  t.equal(logged?.reqId, res.json().requestId)
})

t.test('after an early answer, an unread body within the upload limit is drained; anything else closes', async (t) => {
  const req = (o: { complete?: boolean, read?: boolean, length?: string }) =>
    ({ complete: o.complete ?? false, readableDidRead: o.read ?? false, headers: o.length === undefined ? {} : { 'content-length': o.length } })
  t.equal(drainsAfterAnswer(req({ complete: true }), 'OVERLOADED', 100), true, 'the body is in: nothing to drain')
  t.equal(drainsAfterAnswer(req({ length: '100' }), 'OVERLOADED', 100), true, 'refused before reading: Node reads the rest, the connection stays')
  t.equal(drainsAfterAnswer(req({ length: '101' }), 'OVERLOADED', 100), false, 'more than an upload may be')
  t.equal(drainsAfterAnswer(req({}), 'OVERLOADED', 100), false, 'chunked: no length to bound the drain')
  t.equal(drainsAfterAnswer(req({ length: 'ten' }), 'OVERLOADED', 100), false, 'a length that is not a number')
  t.equal(drainsAfterAnswer(req({ length: '50', read: true }), 'UNSUPPORTED_MEDIA_TYPE', 100), false, 'read part-way: the reader holds the stream')
  t.equal(drainsAfterAnswer(req({ length: '50' }), 'REQUEST_TIMEOUT', 100), false, 'a stalled client')
})
