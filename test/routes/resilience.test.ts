// Load, stalls, crashes and abuse, over real sockets.
import { request } from 'node:http'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

const ANALYZE = '/api/v2/analyze/guest'

async function post (base: string, body: FormData, headers: Record<string, string> = {}) {
  const started = performance.now()
  const res = await fetch(base + ANALYZE, { method: 'POST', body, headers })
  const json = await res.json() as { error?: { code: string } }
  return { status: res.status, json, headers: res.headers, ms: performance.now() - started }
}

t.test('a full server answers 503 OVERLOADED at once, serves the rest, and /health stays up', async (t) => {
  const { app, readiness } = await testApp(t, { env: { WORKERS: '1', QUEUE_SIZE: '1' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const big = await img.jpeg({ width: 4000, height: 3000 })
  const health = (async () => {
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) statuses.push((await fetch(`${base}/health`)).status)
    return statuses
  })()
  const results = await Promise.all(Array.from({ length: 12 }, async () => await post(base, form(big))))
  const ok = results.filter((r) => r.status === 200)
  const refused = results.filter((r) => r.status === 503)
  t.equal(ok.length + refused.length, 12, 'only 200 and 503')
  t.ok(ok.length >= 2 && refused.length >= 1, `${ok.length} served, ${refused.length} refused`)
  for (const r of refused) {
    t.equal(r.json.error?.code, 'OVERLOADED')
    t.equal(r.headers.get('retry-after'), '1')
  }
  // Answered at once rather than after waiting: compared within this run, not against a clock.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  t.ok(median(refused.map((r) => r.ms)) < median(ok.map((r) => r.ms)), 'a typical refusal comes before a typical analysis')
  t.same(await health, Array(10).fill(200), '/health answered 200 throughout')
  t.equal(readiness.engine!.pool.stats().inFlight, 0)
  t.equal((await post(base, form(big))).status, 200, 'served again once the burst is over')
})

t.test('an upload that stalls gets 408 and frees its slot', async (t) => {
  const { app } = await testApp(t, { env: { UPLOAD_STALL_TIMEOUT_S: '0.3', WORKERS: '1', QUEUE_SIZE: '1' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const stalled = async () => await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request(base + ANALYZE, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=B', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.write('--B\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n')
    req.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))
  })
  const [a, b] = await Promise.all([stalled(), stalled()])
  for (const r of [a, b]) {
    t.equal(r.status, 408)
    t.equal(JSON.parse(r.body).error.code, 'REQUEST_TIMEOUT')
  }
  t.equal((await post(base, form(await img.jpeg({ width: 64, height: 64 })))).status, 200, 'both slots were given back')

  // Silent before any file part: no reply can be framed, so the connection is closed.
  const closed = await new Promise<string>((resolve) => {
    const req = request(base + ANALYZE, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=B', 'transfer-encoding': 'chunked' } }, () => resolve('answered'))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    req.write('--B\r\n')
  })
  t.match(closed, /ECONNRESET|socket hang up/)
  t.equal((await post(base, form(await img.jpeg({ width: 64, height: 64 })))).status, 200, 'and that slot too')
})

t.test('a worker that crashes costs only its own request; the pool heals and reports it', async (t) => {
  const { app, readiness } = await testApp(t, { testHooks: true, env: { QUEUE_SIZE: '64' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const pool = readiness.engine!.pool
  const image = await img.jpeg({ width: 320, height: 240 })
  const traffic = Promise.all(Array.from({ length: 20 }, async () => await post(base, form(image))))
  await t.rejects(pool.crashForTest(), /exited with code: 70/)
  const results = await traffic
  t.same(results.map((r) => r.status), Array(20).fill(200), 'every other request was served')
  t.equal(pool.stats().restarts, 1)
  t.equal(pool.stats().workers, 2)
  t.equal((await post(base, form(image))).status, 200)
  t.match(await (await fetch(`${base}/metrics`)).text(), /shine_worker_restarts 1/)
  t.match(await (await fetch(`${base}/health`)).json(), { status: 'ok', workers: 2, workerRestarts: 1 })
})

t.test('per-client rate limit: 429 with Retry-After; X-Forwarded-For only from a trusted proxy', async (t) => {
  const image = form(await img.png({ width: 40, height: 40 }))
  const trusted = await testApp(t, { env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_S: '60' } })
  const base = await trusted.app.listen({ port: 0, host: '127.0.0.1' })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  t.equal((await post(base, image, from('203.0.113.1'))).status, 200)
  t.equal((await post(base, image, from('203.0.113.1'))).status, 200)
  const limited = await post(base, image, from('203.0.113.1'))
  t.equal(limited.status, 429)
  t.equal(limited.json.error?.code, 'RATE_LIMITED')
  t.match(limited.headers.get('retry-after'), /^\d+$/)
  t.ok(Number(limited.headers.get('retry-after')) >= 50, 'about a minute')
  t.equal((await post(base, image, from('203.0.113.2'))).status, 200, 'another client behind the proxy is not affected')
  t.equal((await fetch(`${base}/health`)).status, 200, 'health is never limited')

  const untrusted = await testApp(t, { env: { RATE_LIMIT_MAX: '2', TRUST_PROXY: 'false' } })
  const direct = await untrusted.app.listen({ port: 0, host: '127.0.0.1' })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await post(direct, image, from(`198.51.100.${i}`))).status)
  t.same(statuses, [200, 200, 429], 'a forged X-Forwarded-For from an untrusted peer changes nothing')
})

t.test('hostile forms are refused by their limits, not processed', async (t) => {
  const { app } = await testApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const photo = await img.png({ width: 40, height: 40 })
  const manyFields = new FormData()
  for (let i = 0; i < 10_000; i++) manyFields.append(`f${i}`, 'x')
  manyFields.append('image', new Blob([photo]), 'a.png')
  const longName = new FormData()
  longName.append('n'.repeat(1024 * 1024), 'x')
  longName.append('image', new Blob([photo]), 'a.png')
  const manyFiles = new FormData()
  for (let i = 0; i < 50; i++) manyFiles.append('image', new Blob([photo]), `${i}.png`)
  const bigField = new FormData()
  bigField.append('note', 'x'.repeat(1024 * 1024))
  bigField.append('image', new Blob([photo]), 'a.png')
  for (const [name, body] of [['10 000 fields', manyFields], ['a 1 MB field name', longName], ['50 files', manyFiles], ['a 1 MB field', bigField]] as const) {
    const res = await post(base, body)
    t.ok(res.status === 400 || res.status === 413, `${name}: ${res.status} ${JSON.stringify(res.json)}`)
    t.match(res.json.error?.code, /^(BAD_REQUEST|PAYLOAD_TOO_LARGE)$/, name)
  }
  t.equal((await post(base, form(photo))).status, 200, 'a normal form still works')
})

t.test('security headers on every response, no internals in any error', async (t) => {
  const { app } = await testApp(t)
  const res = await app.inject({ method: 'GET', url: '/health' })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.match(res.headers['strict-transport-security'], /max-age/)
  t.notOk(res.headers['x-powered-by'])
})
