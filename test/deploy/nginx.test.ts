// The repository's nginx config, run by a real nginx in front of the real app on loopback ports.
import { readdir, readFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { multipartBody } from '../../scripts/bench-images.js'
import { jpeg } from '../fixtures/images.js'
import { form } from '../helpers/app.js'
import { SKIN_LABELS } from '../helpers/model.js'
import { appBehindNginx, freePort, NGINX_SOURCE, startNginx, type Echo } from '../helpers/nginx.js'

const MiB = 2 ** 20
const ANALYZE = '/api/v2/analyze/guest'

/** A valid JPEG grown to `size` bytes with APP15 segments, which decoders skip. */
function paddedJpeg (base: Buffer, size: number): Buffer {
  const segment = Buffer.alloc(2 + 0xffff)
  segment.writeUInt16BE(0xffef, 0)
  segment.writeUInt16BE(0xffff, 2) // the length counts itself, not the marker
  const count = Math.ceil((size - base.length) / segment.length)
  return Buffer.concat([base.subarray(0, 2), ...Array<Buffer>(count).fill(segment), base.subarray(2)])
}

/**
 * A request over node:http (fetch cannot set Host), with an explicit Content-Length. The answer is
 * read even if nginx stops reading the body early, as it does for a 413.
 */
async function send (url: string, o: { method?: string, headers?: Record<string, string>, body?: Buffer, chunked?: boolean } = {}) {
  return await new Promise<{ status: number, headers: Record<string, unknown>, raw: string[], body: string }>((resolve, reject) => {
    // Without a Content-Length node:http sends the body chunked, as an ALB may for an HTTP/2 client.
    const length = o.body === undefined || o.chunked === true ? {} : { 'content-length': String(o.body.length) }
    const headers = { ...o.headers, ...length }
    const req = request(url, { method: o.method ?? 'GET', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: res.rawHeaders, body: text }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err)
    })
    req.end(o.body)
  })
}

t.test('through nginx', async (t) => {
  const { nginx, upstreamConnections } = await appBehindNginx(t)

  t.test('/health answers through the proxy and stays out of the access log', async (t) => {
    const health = await fetch(`${nginx.url}/health`)
    t.equal(health.status, 200)
    t.match(await health.json(), { status: 'ok', model: { name: 'tiny-test' }, workers: 2 })
    t.equal((await fetch(`${nginx.url}/health/live`)).status, 200)
    const api = await fetch(`${nginx.url}/api/health`)
    t.equal(api.status, 200)
    t.match(await api.json(), { status: 'ok', model: { name: 'tiny-test' }, workers: 2 }, '/api/health answers as /health')
    t.equal((await fetch(`${nginx.url}/_test/echo`, { headers: { 'x-request-id': 'logged-1' } })).status, 200)
    const log = await nginx.accessLog()
    t.match(log, /"GET \/_test\/echo HTTP\/1\.1" 200 .* rid=logged-1 /, 'other requests are logged with their id')
    t.notMatch(log, /GET \/health/, '/health is not logged')
    t.notMatch(log, /GET \/api\/health/, '/api/health is not logged')
  })

  t.test('x-request-id, the client address and the forwarded headers reach the app', async (t) => {
    // As the ALB sends it: the client's address in X-Forwarded-For, TLS ended at the ALB.
    const res = await send(`${nginx.url}/_test/echo`, {
      headers: { 'x-request-id': 'req-42.abc', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', host: 'api.example' }
    })
    const echo = JSON.parse(res.body) as Echo
    t.equal(res.headers['x-request-id'], 'req-42.abc')
    t.equal(echo.id, 'req-42.abc')
    t.equal(echo.headers['x-request-id'], 'req-42.abc')
    t.equal(echo.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'nginx appends the address it saw')
    t.equal(echo.ip, '203.0.113.7', 'the app trusts loopback nginx for the client address')
    t.equal(echo.headers['x-forwarded-proto'], 'https')
    t.equal(echo.protocol, 'https')
    t.equal(echo.headers['x-forwarded-host'], 'api.example')
    t.equal(echo.headers.host, 'api.example')
    t.equal(echo.headers['x-real-ip'], '127.0.0.1')

    const direct = await (await fetch(`${nginx.url}/_test/echo`)).json() as Echo
    t.match(direct.id, /^[0-9a-f]{32}$/, 'without an id nginx mints one and the app uses it')
    t.equal(direct.headers['x-forwarded-proto'], 'http')
    t.equal(direct.ip, '127.0.0.1')

    const unsafe = await fetch(`${nginx.url}/_test/echo`, { headers: { 'x-request-id': 'a"b' } })
    const unsafeEcho = await unsafe.json() as Echo
    t.match(unsafeEcho.id, /^[0-9a-f]{32}$/, 'an id that is unsafe to log or embed in JSON is replaced')
    t.equal(unsafe.headers.get('x-request-id'), unsafeEcho.id)
  })

  t.test('a ~90 MB upload reaches the app and gets its answer', async (t) => {
    const photo = paddedJpeg(await jpeg({ width: 640, height: 480, seed: 5 }), 90 * MiB)
    const res = await fetch(`${nginx.url}${ANALYZE}`, { method: 'POST', body: form(photo), headers: { 'x-request-id': 'big-upload' } })
    const body = await res.json() as { requestId: string, predictions: unknown[], image: unknown }
    t.equal(res.status, 200, JSON.stringify(body).slice(0, 300))
    t.equal(body.requestId, 'big-upload')
    t.same(body.image, { width: 640, height: 480, format: 'jpeg' })
    t.equal(body.predictions.length, SKIN_LABELS.length)
  })

  t.test('a 101 MB upload gets nginx\'s 413 in the API\'s error shape', async (t) => {
    for (const chunked of [false, true]) {
      const res = await send(`${nginx.url}${ANALYZE}`, {
        method: 'POST',
        body: Buffer.alloc(101 * MiB),
        chunked,
        headers: { 'content-type': 'multipart/form-data; boundary=x', 'x-request-id': 'too-big' }
      })
      const how = chunked ? 'chunked' : 'with Content-Length'
      t.equal(res.status, 413, how)
      t.match(res.headers['content-type'], /^application\/json/, how)
      t.equal(res.headers['x-request-id'], 'too-big', how)
      t.same(JSON.parse(res.body), {
        success: false,
        error: { code: 'PAYLOAD_TOO_LARGE', message: 'The upload is larger than 100 MB; send a smaller image.' },
        message: 'The upload is larger than 100 MB; send a smaller image.',
        requestId: 'too-big'
      }, how)
    }
  })

  t.test('the app\'s own errors pass through untouched', async (t) => {
    const res = await fetch(`${nginx.url}${ANALYZE}`, { method: 'POST', body: form(Buffer.from('not an image')), headers: { 'x-request-id': 'bad-1' } })
    t.equal(res.status, 415)
    t.match(await res.json(), { error: { code: 'UNSUPPORTED_MEDIA_TYPE' }, requestId: 'bad-1' })
  })

  t.test('nginx keeps upstream connections alive', async (t) => {
    const before = upstreamConnections()
    for (let i = 0; i < 20; i++) await (await fetch(`${nginx.url}/_test/echo`)).arrayBuffer()
    // At most one new connection per nginx worker, not one per request.
    t.ok(upstreamConnections() - before <= 4, `${upstreamConnections() - before} new upstream connections for 20 requests`)
  })
})

t.test('nginx\'s 502 when the app is down is JSON in the API\'s shape', async (t) => {
  const nginx = await startNginx(t, { upstreamPort: await freePort() })
  const res = await fetch(`${nginx.url}${ANALYZE}`, { method: 'POST', body: form(Buffer.from('x')), headers: { 'x-request-id': 'down-1' } })
  t.equal(res.status, 502)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.equal(res.headers.get('x-request-id'), 'down-1')
  t.match(await res.json(), { success: false, error: { code: 'BAD_GATEWAY', message: /restarting or unavailable/ }, message: /restarting or unavailable/, requestId: 'down-1' })
})

t.test('nginx\'s 504 is JSON in the API\'s shape (read timeout shortened for the test)', async (t) => {
  const { nginx } = await appBehindNginx(t, {
    overrides: [['conf.d/elasticbeanstalk/00_application.conf', 'proxy_read_timeout      900s;', 'proxy_read_timeout      1s;']]
  })
  const res = await fetch(`${nginx.url}/_test/slow?ms=2000`, { headers: { 'x-request-id': 'slow-1' } })
  t.equal(res.status, 504)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.match(await res.json(), { success: false, error: { code: 'GATEWAY_TIMEOUT' }, message: /did not finish/, requestId: 'slow-1' })
})

t.test('a busy app\'s 503 for a large upload reaches the client through nginx, not a 502', async (t) => {
  // One worker and one queue slot: two uploads held open (straight to the app, never finished)
  // take both admission slots, so the next upload is refused before its body is read.
  const { app, nginx } = await appBehindNginx(t, { env: { WORKERS: '1', QUEUE_SIZE: '1', UPLOAD_STALL_TIMEOUT_S: '60' } })
  const { port } = app.server.address() as { port: number }
  const held = [0, 1].map(() => {
    const req = request(`http://127.0.0.1:${port}${ANALYZE}`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': '1000000' } })
    req.on('error', () => {})
    req.write('--x\r\n')
    return req
  })
  t.teardown(() => { for (const req of held) req.destroy() })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const upload = multipartBody(paddedJpeg(await jpeg({ width: 640, height: 480, seed: 6 }), 12 * MiB))
  // Without the drain, 1 in 3 or 4 of these was nginx's 502 (its write of the body hit EPIPE).
  for (let i = 0; i < 6; i++) {
    const res = await send(`${nginx.url}${ANALYZE}`, { method: 'POST', body: upload.body, headers: { 'content-type': upload.contentType, 'x-request-id': `busy-${i}` } })
    t.equal(res.status, 503, `upload ${i}: the app's answer`)
    t.match(JSON.parse(res.body), { error: { code: 'OVERLOADED' }, requestId: `busy-${i}` })
  }
})

/** Every value of one header as sent (a repeated header stays repeated). */
const all = (raw: string[], name: string) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === name)

t.test('CORS through nginx: preflights pass through, one Allow-Origin, nginx\'s 413 readable by the page', async (t) => {
  const site = 'https://www.shineskincollective.com'
  const { nginx } = await appBehindNginx(t, { env: { CORS_ORIGINS: `${site},http://localhost:3000`, CORS_MAX_AGE_S: '321' } })
  const preflight = await send(`${nginx.url}${ANALYZE}`, {
    method: 'OPTIONS', headers: { origin: site, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  t.equal(preflight.status, 204, 'OPTIONS reaches the app and its answer comes back')
  t.same(all(preflight.raw, 'access-control-allow-origin'), [site])
  t.same(all(preflight.raw, 'access-control-allow-headers'), ['Content-Type, Authorization, X-Requested-With, Accept, Origin, Cache-Control, X-Request-Id, X-Client-Id'])
  t.same(all(preflight.raw, 'access-control-max-age'), ['321'])
  t.match(all(preflight.raw, 'access-control-allow-methods')[0], /POST/)

  const photo = (await jpeg({ width: 64, height: 64 })).toString('base64')
  const answers = [
    ['analysis', await send(`${nginx.url}${ANALYZE}`, { method: 'POST', headers: { origin: site, 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ image: photo })) }), 200],
    ['an app error', await send(`${nginx.url}${ANALYZE}`, { method: 'POST', headers: { origin: site, 'content-type': 'application/json' }, body: Buffer.from('{"image":"!"}') }), 400],
    ['health', await send(`${nginx.url}/api/health`, { headers: { origin: site } }), 200],
    ['nginx\'s 413', await send(`${nginx.url}${ANALYZE}`, { method: 'POST', headers: { origin: site, 'content-type': 'image/jpeg', 'x-request-id': 'big-cors' }, body: Buffer.alloc(101 * MiB) }), 413],
    ['nginx\'s 413, chunked', await send(`${nginx.url}${ANALYZE}`, { method: 'POST', chunked: true, headers: { origin: site, 'content-type': 'image/jpeg' }, body: Buffer.alloc(101 * MiB) }), 413]
  ] as const
  for (const [name, res, status] of answers) {
    t.equal(res.status, status, `${name}: ${res.body.slice(0, 200)}`)
    t.same(all(res.raw, 'access-control-allow-origin'), [site], `${name}: exactly one Allow-Origin`)
    t.match(all(res.raw, 'vary').join(','), /Origin/i, `${name}: Vary: Origin`)
  }
  t.match(JSON.parse(answers[3][1].body), { success: false, error: { code: 'PAYLOAD_TOO_LARGE', message: 'The upload is larger than 100 MB; send a smaller image.' }, requestId: 'big-cors' })
  const stranger = await send(`${nginx.url}${ANALYZE}`, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'image/jpeg' }, body: Buffer.alloc(101 * MiB) })
  t.equal(stranger.status, 413)
  t.same(all(stranger.raw, 'access-control-allow-origin'), [], 'CORS_ORIGINS decides, also for nginx\'s 413')
})

t.test('the nginx config writes no CORS header of its own', async (t) => {
  const files = (await readdir(NGINX_SOURCE, { recursive: true })).filter((f) => f.endsWith('.conf'))
  t.ok(files.length >= 2)
  for (const f of files) t.notMatch(await readFile(join(NGINX_SOURCE, f), 'utf8'), /^\s*(add_header|more_set_headers)\s+["']?access-control/im, f)
})
