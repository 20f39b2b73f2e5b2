// A 75 s response through the repo's nginx is not cut: nginx's default proxy_read_timeout (60 s)
// would answer 504. The one deliberately slow test (75 s of wall time); it has its own file so
// tap runs it alongside the others.
import t from 'tap'
import { appBehindNginx } from '../helpers/nginx.js'

const WAIT_MS = 75_000

t.test('a response that takes 75 s comes back whole', async (t) => {
  const { nginx } = await appBehindNginx(t)
  const started = Date.now()
  const res = await fetch(`${nginx.url}/_test/slow?ms=${WAIT_MS}`, { headers: { 'x-request-id': 'slow-75' } })
  t.equal(res.status, 200)
  t.same(await res.json(), { waitedMs: WAIT_MS })
  t.equal(res.headers.get('x-request-id'), 'slow-75')
  t.ok(Date.now() - started >= WAIT_MS, 'the answer came after the wait, not an early error')
})
