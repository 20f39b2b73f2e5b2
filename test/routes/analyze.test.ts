import type { InjectOptions } from 'fastify'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'
import { SKIN_LABELS } from '../helpers/model.js'

const URL_ = '/api/v2/analyze/guest'

t.test('analysis of real encodes in every accepted format', async (t) => {
  const { app } = await testApp(t)
  const cases: Array<[string, Buffer, string, number, number]> = [
    ['jpeg', await img.jpeg({ width: 120, height: 80 }), 'jpeg', 120, 80],
    ['png with alpha', await img.png({ width: 90, height: 60, channels: 4 }), 'png', 90, 60],
    ['grey png', await img.grey({ width: 64, height: 64 }), 'png', 64, 64],
    ['16-bit png', await img.png16({ width: 50, height: 70 }), 'png', 50, 70],
    ['webp', await img.webp({ width: 100, height: 100 }), 'webp', 100, 100],
    ['avif', await img.avif({ width: 64, height: 48 }), 'avif', 64, 48],
    ['gif', await img.gif({ width: 40, height: 40 }), 'gif', 40, 40],
    ['animated gif (first frame)', await img.animatedGif({ width: 48, height: 36, frames: 3 }), 'gif', 48, 36]
  ]
  for (const [name, bytes, format, width, height] of cases) {
    const res = await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })
    t.equal(res.statusCode, 200, `${name}: ${res.body.slice(0, 200)}`)
    const body = res.json()
    t.same(body.image, { width, height, format }, name)
    t.equal(body.predictions.length, SKIN_LABELS.length)
    t.same([...body.predictions.map((p: { label: string }) => p.label)].sort(), [...SKIN_LABELS].sort())
    const confidences: number[] = body.predictions.map((p: { confidence: number }) => p.confidence)
    t.same(confidences, [...confidences].sort((a, b) => b - a), 'highest first')
    t.ok(Math.abs(confidences.reduce((a, b) => a + b) - 1) < 1e-4, 'softmax from the manifest')
    t.same(body.top, body.predictions[0])
    t.match(body, { requestId: res.headers['x-request-id'], model: { name: 'tiny-test', version: 'test-1', demo: false } })
    t.ok(body.timingsMs.total >= body.timingsMs.inference)
  }
})

t.test('EXIF orientations 1–8: the reported size is after rotation', async (t) => {
  const { app } = await testApp(t)
  for (let orientation = 1; orientation <= 8; orientation++) {
    const bytes = await img.jpeg({ width: 120, height: 80, orientation })
    const res = await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })
    const rotated = orientation >= 5
    t.same(res.json().image, { width: rotated ? 80 : 120, height: rotated ? 120 : 80, format: 'jpeg' }, `orientation ${orientation}`)
  }
})

t.test('orientation changes what the model sees', async (t) => {
  const { app } = await testApp(t)
  const analyse = async (orientation: number) => (await app.inject({
    method: 'POST', url: URL_, payload: form(await img.jpeg({ width: 96, height: 64, seed: 5, orientation }))
  })).json().predictions
  t.notSame(await analyse(1), await analyse(3), 'a 180° rotation is applied before inference')
})

t.test('the first file part is used whatever its field name', async (t) => {
  const { app } = await testApp(t)
  const fd = new FormData()
  fd.append('note', 'a text field first')
  fd.append('photo', new Blob([await img.png({ width: 40, height: 40 })]), 'x.bin')
  const res = await app.inject({ method: 'POST', url: URL_, payload: fd })
  t.equal(res.statusCode, 200)
  t.equal(res.json().image.format, 'png', 'the bytes decide, not the filename or part type')
})

t.test('the same image always gets the same predictions; different images differ', async (t) => {
  const { app } = await testApp(t)
  const a = await img.jpeg({ width: 100, height: 80, seed: 3 })
  const b = await img.jpeg({ width: 100, height: 80, seed: 4 })
  const run = async (bytes: Buffer) => (await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })).json().predictions
  const first = await run(a)
  for (let i = 0; i < 5; i++) t.same(await run(a), first)
  t.notSame(await run(b), first)
})

t.test('bad input gets the status in DESIGN.md\'s table', async (t) => {
  const { app } = await testApp(t)
  const full = await img.jpeg({ width: 400, height: 300 })
  const cases: Array<[string, Buffer, number, string, RegExp?]> = [
    ['zero bytes', Buffer.alloc(0), 400, 'NO_IMAGE', /empty/],
    ['random bytes', img.seededBytes(5000), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['svg', img.SVG, 415, 'UNSUPPORTED_MEDIA_TYPE', /SVG/],
    ['pdf', img.PDF, 415, 'UNSUPPORTED_MEDIA_TYPE', /PDF/],
    ['heic', img.HEIC, 415, 'UNSUPPORTED_MEDIA_TYPE', /send a JPEG/],
    ['tiff', img.TIFF, 415, 'UNSUPPORTED_MEDIA_TYPE', /TIFF/],
    ['bmp', img.BMP, 415, 'UNSUPPORTED_MEDIA_TYPE', /BMP/],
    ['truncated jpeg', full.subarray(0, full.length >> 1), 422, 'UNDECODABLE_IMAGE'],
    ['jpeg header only', full.subarray(0, 200), 422, 'UNDECODABLE_IMAGE'],
    ['png with a bad CRC', corruptPngCrc(await img.png({ width: 64, height: 64 })), 422, 'UNDECODABLE_IMAGE'],
    ['png claiming 60000×60000', await img.pngClaiming(60000, 60000), 413, 'IMAGE_TOO_LARGE'],
    ['png claiming 0×0', await img.pngClaiming(0, 0), 422, 'UNDECODABLE_IMAGE'],
    ['20×200', await img.png({ width: 20, height: 200 }), 422, 'UNSUITABLE_IMAGE', /at least 32 px/],
    ['40×900 (beyond 1:20)', await img.png({ width: 40, height: 900 }), 422, 'UNSUITABLE_IMAGE', /1:20/]
  ]
  for (const [name, bytes, status, code, message] of cases) {
    const res = await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })
    t.equal(res.statusCode, status, `${name}: ${res.body}`)
    const body = res.json()
    t.equal(body.error.code, code, name)
    t.equal(body.requestId, res.headers['x-request-id'])
    if (message !== undefined) t.match(body.error.message, message, name)
    t.notMatch(res.body, /node_modules|\bat \w+ \(|\/src\//, 'no stack or path')
  }
  // nothing above broke the pool: a good image still works
  t.equal((await app.inject({ method: 'POST', url: URL_, payload: form(full) })).statusCode, 200)
})

function corruptPngCrc (png: Buffer): Buffer {
  const out = Buffer.from(png)
  out[29] = out[29]! ^ 0xff // the IHDR chunk's CRC
  return out
}

t.test('requests that are not an image in one of the accepted forms', async (t) => {
  const { app } = await testApp(t)
  const fieldsOnly = new FormData()
  fieldsOnly.append('image', 'not a file')
  const cases: Array<[string, InjectOptions, number, string]> = [
    ['a form without a file part', { method: 'POST', url: URL_, payload: fieldsOnly }, 400, 'NO_IMAGE'],
    ['json whose image is not base64', { method: 'POST', url: URL_, payload: { image: 'base64...' } }, 400, 'BAD_REQUEST'],
    ['text/plain', { method: 'POST', url: URL_, headers: { 'content-type': 'text/plain' }, payload: 'hello' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no body', { method: 'POST', url: URL_ }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['malformed multipart', {
      method: 'POST', url: URL_, headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      payload: '--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\nabc'
    }, 400, 'BAD_REQUEST'],
    ['multipart without boundary', { method: 'POST', url: URL_, headers: { 'content-type': 'multipart/form-data' }, payload: 'abc' }, 400, 'BAD_REQUEST'],
    ['unknown route', { method: 'GET', url: '/api/v1/nothing?x=1' }, 404, 'NOT_FOUND'],
    ['wrong method', { method: 'GET', url: URL_ }, 404, 'NOT_FOUND']
  ]
  for (const [name, request, status, code] of cases) {
    const res = await app.inject(request)
    t.equal(res.statusCode, status, `${name}: ${res.body}`)
    t.equal(res.json().error.code, code, name)
    t.match(res.headers['content-type'], /application\/json/)
  }
})

t.test('503 NOT_READY with Retry-After until the model is loaded', async (t) => {
  const { app } = await testApp(t, { notReady: true })
  const res = await app.inject({ method: 'POST', url: URL_, payload: form(await img.jpeg({ width: 64, height: 64 })) })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { success: false, error: { code: 'NOT_READY' }, message: /still loading/ })
  t.equal(res.headers['retry-after'], '5')
})

t.test('x-request-id is echoed when safe, generated otherwise; CORS headers present', async (t) => {
  const { app } = await testApp(t, { env: { CORS_ORIGINS: 'https://shine.example' } })
  const echoed = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'abc-123', origin: 'https://shine.example' } })
  t.equal(echoed.headers['x-request-id'], 'abc-123')
  t.equal(echoed.headers['access-control-allow-origin'], 'https://shine.example')
  t.match(echoed.headers['access-control-expose-headers'], /x-request-id/)
  const unsafe = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'bad id\twith "quotes"' } })
  t.match(unsafe.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  t.equal(unsafe.json().requestId, unsafe.headers['x-request-id'])
  const other = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined)
  const preflight = await app.inject({ method: 'OPTIONS', url: URL_, headers: { origin: 'https://shine.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.statusCode, 204)
})

t.test('the analysis carries success, analysis_id, timestamp and skin_analysis, field by field', async (t) => {
  const { app } = await testApp(t)
  const bytes = await img.jpeg({ width: 100, height: 80, seed: 7 })
  const before = Date.now()
  const first = await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })
  const after = Date.now()
  t.equal(first.statusCode, 200, first.body.slice(0, 200))
  const body = first.json()

  t.equal(body.success, true)

  t.type(body.analysis_id, 'string')
  t.match(body.analysis_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a v4 UUID')
  t.not(body.analysis_id, body.requestId, 'an analysis id, not the request id')

  t.type(body.timestamp, 'string')
  t.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601 UTC')
  const at = Date.parse(body.timestamp)
  t.ok(at >= before && at <= after, `finished during the request (${before} ≤ ${at} ≤ ${after})`)
  t.equal(new Date(at).toISOString(), body.timestamp, 'round-trips')

  const sa = body.skin_analysis
  t.same(Object.keys(sa).sort(), ['ai_level', 'ai_processed', 'skin_conditions', 'total_conditions'], 'nothing invented')
  t.same(sa.skin_conditions, body.predictions.map((p: { label: string, confidence: number }) => ({ type: p.label, confidence: p.confidence })),
    'the predictions: same order, same values')
  t.equal(sa.skin_conditions.length, SKIN_LABELS.length, 'every label')
  t.equal(sa.total_conditions, SKIN_LABELS.length)
  t.type(sa.total_conditions, 'number')
  t.equal(sa.ai_processed, true)
  t.equal(sa.ai_level, 'tiny-test test-1', '"<model name> <version>"')
  t.same(sa.skin_conditions[0], { type: body.top.label, confidence: body.top.confidence })

  // the existing fields are all still there
  for (const key of ['requestId', 'model', 'predictions', 'top', 'image', 'timingsMs']) t.ok(key in body, key)

  const second = (await app.inject({ method: 'POST', url: URL_, payload: form(bytes) })).json()
  t.not(second.analysis_id, body.analysis_id, 'unique per analysis, even for the same image')
  t.same(second.predictions, body.predictions)
  t.ok(Date.parse(second.timestamp) >= at, 'timestamps move forward')
})

t.test('an error answer carries success false and a top-level message', async (t) => {
  const { app } = await testApp(t)
  const res = await app.inject({ method: 'POST', url: URL_, payload: form(img.SVG), headers: { 'x-request-id': 'svg-1' } })
  t.equal(res.statusCode, 415)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['error', 'message', 'requestId', 'success'])
  t.equal(body.success, false)
  t.equal(body.error.code, 'UNSUPPORTED_MEDIA_TYPE')
  t.match(body.error.message, /SVG/)
  t.equal(body.message, body.error.message)
  t.equal(body.requestId, 'svg-1')
  const notFound = (await app.inject('/api/nothing')).json()
  t.match(notFound, { success: false, error: { code: 'NOT_FOUND' }, message: notFound.error.message })
})
