// CORS as a browser sees it, over a real socket: exactly one Access-Control-Allow-Origin on every
// answer to an allowed origin, errors included; preflights on every route; none for others.
import { request } from 'node:http'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { testApp } from '../helpers/app.js'

const ALLOWED = 'https://www.shineskincollective.com'
const LOCAL = 'http://localhost:3000'
const OTHER = 'https://evil.example'
const ANALYZE = '/api/v2/analyze/guest'
const ROUTES = ['/health', '/api/health', '/health/live', '/metrics', ANALYZE, '/api/v6/skin/analyze-hare-run', '/api/v5/skin/analyze-fixed', '/openapi.json', '/docs', '/no/such/route']

interface Answer { status: number, headers: Record<string, string[]> }

/** Every header as sent, repeated ones kept apart (a fetch Headers would join them). */
async function call (base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request(base + path, { method, headers: body === undefined ? headers : { ...headers, 'content-length': String(body.length) } }, (res) => {
      const all: Record<string, string[]> = {}
      for (let i = 0; i < res.rawHeaders.length; i += 2) (all[res.rawHeaders[i]!.toLowerCase()] ??= []).push(res.rawHeaders[i + 1]!)
      res.resume().on('end', () => resolve({ status: res.statusCode!, headers: all }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const acao = (a: Answer) => a.headers['access-control-allow-origin'] ?? []
const varyOrigin = (a: Answer) => (a.headers.vary ?? []).join(',').split(',').map((v) => v.trim().toLowerCase()).includes('origin')

t.test('an allowed origin: one echoed Allow-Origin on successes and on every kind of error', async (t) => {
  const { app, readiness } = await testApp(t, { env: { CORS_ORIGINS: `${ALLOWED},${LOCAL}`, RATE_LIMIT_MAX: '0', MAX_UPLOAD_MB: '0.05' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const photo = await img.jpeg({ width: 64, height: 64 })
  const json = (image: string) => Buffer.from(JSON.stringify({ image }))
  const cases: Array<[string, string, string, Record<string, string>, Buffer | undefined, number]> = [
    ['health', 'GET', '/health', {}, undefined, 200],
    ['api health', 'GET', '/api/health', {}, undefined, 200],
    ['analysis (json, the preflighted form)', 'POST', ANALYZE, { 'content-type': 'application/json' }, json(photo.toString('base64')), 200],
    ['400', 'POST', ANALYZE, { 'content-type': 'application/json' }, json('not base64!'), 400],
    ['413 from the app', 'POST', ANALYZE, { 'content-type': 'image/jpeg' }, img.seededBytes(100 * 1024), 413],
    ['404', 'GET', '/nothing', {}, undefined, 404],
    ['415', 'POST', '/api/v6/skin/analyze-hare-run', { 'content-type': 'text/plain' }, Buffer.from('x'), 415]
  ]
  for (const [name, method, path, headers, body, status] of cases) {
    for (const origin of [ALLOWED, LOCAL]) {
      const a = await call(base, method, path, { ...headers, origin }, body)
      t.equal(a.status, status, `${name} from ${origin}`)
      t.same(acao(a), [origin], `${name}: exactly one, the caller's origin`)
      t.ok(varyOrigin(a), `${name}: Vary: Origin`)
      t.match(a.headers['access-control-expose-headers']?.[0], /x-request-id/)
      t.notOk(a.headers['access-control-allow-credentials'], 'no credentials')
    }
  }
  readiness.stopping()
  const draining = await call(base, 'POST', ANALYZE, { origin: ALLOWED, 'content-type': 'image/jpeg' }, photo)
  t.equal(draining.status, 503, 'shutting down')
  t.same(acao(draining), [ALLOWED], '503 while draining carries it too')
})

t.test('429, 503 NOT_READY and OVERLOADED carry it', async (t) => {
  const limited = await testApp(t, { env: { CORS_ORIGINS: ALLOWED, RATE_LIMIT_MAX: '1' } })
  const limitedBase = await limited.app.listen({ port: 0, host: '127.0.0.1' })
  const photo = await img.jpeg({ width: 64, height: 64 })
  const statuses = []
  for (let i = 0; i < 2; i++) {
    const a = await call(limitedBase, 'POST', ANALYZE, { origin: ALLOWED, 'content-type': 'image/jpeg' }, photo)
    statuses.push(a.status)
    t.same(acao(a), [ALLOWED], `answer ${a.status}`)
  }
  t.same(statuses, [200, 429])

  const notReady = await testApp(t, { notReady: true, env: { CORS_ORIGINS: ALLOWED } })
  const base = await notReady.app.listen({ port: 0, host: '127.0.0.1' })
  const a = await call(base, 'POST', ANALYZE, { origin: ALLOWED, 'content-type': 'image/jpeg' }, Buffer.from('x'))
  t.equal(a.status, 503)
  t.same(acao(a), [ALLOWED])

  const full = await testApp(t, { env: { CORS_ORIGINS: ALLOWED, WORKERS: '1', QUEUE_SIZE: '1', UPLOAD_STALL_TIMEOUT_S: '2' } })
  const fullBase = await full.app.listen({ port: 0, host: '127.0.0.1' })
  // two uploads that hold both slots while they send nothing more
  const held = [0, 1].map(() => {
    const req = request(fullBase + ANALYZE, { method: 'POST', headers: { 'content-type': 'image/jpeg', 'content-length': '1000' } })
    req.on('error', () => {})
    req.write('x')
    return req
  })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const over = await call(fullBase, 'POST', ANALYZE, { origin: ALLOWED, 'content-type': 'image/jpeg' }, Buffer.from('x'))
  t.equal(over.status, 503)
  t.same(acao(over), [ALLOWED], 'OVERLOADED')
  for (const req of held) req.destroy()
})

t.test('preflight on every route: methods, their headers, max age', async (t) => {
  const { app } = await testApp(t, { env: { CORS_ORIGINS: ALLOWED, CORS_MAX_AGE_S: '123' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const path of ROUTES) {
    const a = await call(base, 'OPTIONS', path, {
      origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization,x-requested-with'
    })
    t.equal(a.status, 204, path)
    t.same(acao(a), [ALLOWED], `${path}: one Allow-Origin`)
    t.same(a.headers['access-control-allow-methods'], ['GET, HEAD, POST, OPTIONS'], path)
    t.same(a.headers['access-control-allow-headers'], ['Content-Type, Authorization, X-Requested-With, Accept, Origin, Cache-Control, X-Request-Id, X-Client-Id'], path)
    t.same(a.headers['access-control-max-age'], ['123'], path)
    t.ok(varyOrigin(a), `${path}: Vary: Origin`)
  }
  const defaults = await testApp(t, { env: { CORS_ORIGINS: ALLOWED } })
  const d = await call(await defaults.app.listen({ port: 0, host: '127.0.0.1' }), 'OPTIONS', ANALYZE, { origin: ALLOWED, 'access-control-request-method': 'POST' })
  t.same(d.headers['access-control-max-age'], ['600'], 'CORS_MAX_AGE_S defaults to 600')
})

t.test('an origin not in CORS_ORIGINS gets no Allow-Origin (the browser refuses); "*" answers "*"', async (t) => {
  const { app } = await testApp(t, { env: { CORS_ORIGINS: ALLOWED } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const [method, path] of [['GET', '/health'], ['OPTIONS', ANALYZE], ['GET', '/nothing']]) {
    const a = await call(base, method!, path!, { origin: OTHER, 'access-control-request-method': 'POST' })
    t.same(acao(a), [], `${method} ${path}`)
    t.ok(varyOrigin(a), 'Vary: Origin all the same (a shared cache must not reuse an allowed answer)')
  }
  const any = await testApp(t, { env: { CORS_ORIGINS: '*' } })
  const anyBase = await any.app.listen({ port: 0, host: '127.0.0.1' })
  for (const [method, path] of [['GET', '/health'], ['OPTIONS', ANALYZE], ['GET', '/nothing']]) {
    const a = await call(anyBase, method!, path!, { origin: OTHER, 'access-control-request-method': 'POST' })
    t.same(acao(a), ['*'], `${method} ${path}`)
    t.ok(varyOrigin(a))
  }
})
