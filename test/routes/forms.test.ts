// Every request form their clients used (CLIENTS.md), on every analyze route, with the same
// limits, sniffing and errors as a multipart upload.
import type { InjectOptions } from 'fastify'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

const GUEST = '/api/v2/analyze/guest'
const ROUTES = [GUEST, '/api/v6/skin/analyze-hare-run', '/api/v5/skin/analyze-fixed']

const json = (url: string, body: unknown): InjectOptions =>
  ({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) })
const raw = (url: string, bytes: Buffer, type: string): InjectOptions =>
  ({ method: 'POST', url, headers: { 'content-type': type }, payload: bytes })

t.test('the same photo in every form gets the same analysis', async (t) => {
  const { app } = await testApp(t)
  const photo = await img.jpeg({ width: 120, height: 90, seed: 11 })
  const b64 = photo.toString('base64')
  const theirForm = new FormData()
  // what their guest form sent: the photo and demographics (accepted, not analysed)
  theirForm.append('image', new Blob([photo], { type: 'image/jpeg' }), 'selfie.jpg')
  theirForm.append('ethnicity', 'South Asian')
  theirForm.append('age', '31')
  theirForm.append('race', 'Asian')
  theirForm.append('demographics', JSON.stringify({ age: 31, gender: 'female', skin_type: 'combination', notes: 'x'.repeat(2000) }))
  const forms: Array<[string, InjectOptions]> = [
    ['multipart with their text fields', { method: 'POST', url: GUEST, payload: theirForm }],
    ['multipart, fields before the file', { method: 'POST', url: GUEST, payload: fieldsFirst(photo) }],
    ['json image', json(GUEST, { image: b64 })],
    ['json image_data with user_demographics', json(GUEST, { image_data: b64, user_demographics: { age: 31, ethnicity: 'x' } })],
    ['json data: URL', json(GUEST, { image: `data:image/jpeg;base64,${b64}` })],
    ['json unpadded url-safe', json(GUEST, { image_data: photo.toString('base64url') })],
    ['json with MIME line breaks', json(GUEST, { image: b64.replace(/.{76}/g, '$&\r\n') })],
    ['json with a charset', { ...json(GUEST, { image: b64 }), headers: { 'content-type': 'application/json; charset=utf-8' } }],
    ['raw image/jpeg', raw(GUEST, photo, 'image/jpeg')],
    ['raw application/octet-stream', raw(GUEST, photo, 'application/octet-stream')],
    ['raw, wrong image type (the bytes decide)', raw(GUEST, photo, 'image/png')]
  ]
  let first: unknown
  for (const [name, request] of forms) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 200, `${name}: ${res.body.slice(0, 300)}`)
    const body = res.json()
    t.match(body, { success: true, image: { width: 120, height: 90, format: 'jpeg' }, skin_analysis: { ai_processed: true } }, name)
    first ??= body.predictions
    t.same(body.predictions, first, `${name}: same predictions`)
  }
})

function fieldsFirst (photo: Buffer): FormData {
  const fd = new FormData()
  fd.append('ethnicity', 'x')
  fd.append('age', '44')
  fd.append('photo', new Blob([photo]), 'p.jpg')
  return fd
}

t.test('sniffing, limits and errors are the same whatever the form', async (t) => {
  // 60 KiB: a 45 KiB photo fits decoded, but its base64 (60 KiB) and JSON body are larger than that
  const { app } = await testApp(t, { env: { MAX_UPLOAD_MB: String(60 / 1024) } })
  const fits = Buffer.concat([await img.jpeg({ width: 64, height: 64 }), img.seededBytes(45 * 1024)])
  const over = Buffer.concat([fits, img.seededBytes(20 * 1024)])
  const bomb = await img.pngClaiming(60000, 60000)
  const narrow = await img.png({ width: 20, height: 200 })
  const check = async (name: string, request: InjectOptions, status: number, code: string, message?: RegExp) => {
    const res = await app.inject(request)
    t.equal(res.statusCode, status, `${name}: ${res.body.slice(0, 300)}`)
    const body = res.json()
    t.match(body, { success: false, error: { code }, message: body.error?.message, requestId: res.headers['x-request-id'] }, name)
    if (message !== undefined) t.match(body.error.message, message, name)
    t.notMatch(res.body, /node_modules|\bat \w+ \(|\/src\//, `${name}: no stack or path`)
  }
  for (const url of ROUTES) {
    t.ok(fits.toString('base64').length > 60 * 1024, 'the base64 is over MAX_UPLOAD_MB…')
    const ok = await app.inject(json(url, { image: fits.toString('base64') }))
    t.equal(ok.statusCode, 200, `${url}: …but the decoded image is under it, so it passes: ${ok.body.slice(0, 200)}`)
    await check(`${url} json over`, json(url, { image: over.toString('base64') }), 413, 'PAYLOAD_TOO_LARGE', /decoded image in "image" is larger than 60 KB/)
    await check(`${url} raw over`, raw(url, over, 'image/jpeg'), 413, 'PAYLOAD_TOO_LARGE')
    await check(`${url} multipart over`, { method: 'POST', url, payload: form(over) }, 413, 'PAYLOAD_TOO_LARGE')
    await check(`${url} json svg`, json(url, { image: img.SVG.toString('base64') }), 415, 'UNSUPPORTED_MEDIA_TYPE', /SVG/)
    await check(`${url} raw svg labelled jpeg`, raw(url, img.SVG, 'image/jpeg'), 415, 'UNSUPPORTED_MEDIA_TYPE', /SVG/)
    await check(`${url} json heic`, json(url, { image_data: img.HEIC.toString('base64') }), 415, 'UNSUPPORTED_MEDIA_TYPE', /send a JPEG/)
    await check(`${url} json truncated jpeg`, json(url, { image: fits.subarray(0, 300).toString('base64') }), 422, 'UNDECODABLE_IMAGE')
    await check(`${url} json bomb header`, json(url, { image: bomb.toString('base64') }), 413, 'IMAGE_TOO_LARGE')
    await check(`${url} raw bomb header`, raw(url, bomb, 'image/png'), 413, 'IMAGE_TOO_LARGE')
    await check(`${url} json 20×200`, json(url, { image_data: narrow.toString('base64') }), 422, 'UNSUITABLE_IMAGE', /at least 32 px/)
    await check(`${url} raw truncated`, raw(url, fits.subarray(0, 300), 'application/octet-stream'), 422, 'UNDECODABLE_IMAGE')
    await check(`${url} not base64`, json(url, { image: 'this is not base64!' }), 400, 'BAD_REQUEST', /"image" is not valid base64/)
    await check(`${url} image_data not base64`, json(url, { image_data: '%%%' }), 400, 'BAD_REQUEST', /"image_data" is not valid base64/)
    await check(`${url} image a number`, json(url, { image: 42 }), 400, 'BAD_REQUEST', /"image" must be a base64 string/)
    await check(`${url} no image field`, json(url, { photo: 'QUJD' }), 400, 'NO_IMAGE', /"image"/)
    await check(`${url} empty image`, json(url, { image: '' }), 400, 'NO_IMAGE', /empty/)
    await check(`${url} malformed json`, json(url, '{"image": "QUJD"'), 400, 'BAD_REQUEST', /malformed/)
    await check(`${url} empty raw`, raw(url, Buffer.alloc(0), 'application/octet-stream'), 400, 'NO_IMAGE')
    await check(`${url} text/plain`, raw(url, Buffer.from('hello'), 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE', /multipart\/form-data.*JSON.*raw image/)
    await check(`${url} application/xml`, raw(url, Buffer.from('<a/>'), 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE', /JSON/)
    await check(`${url} no body`, { method: 'POST', url }, 415, 'UNSUPPORTED_MEDIA_TYPE', /JSON/)
  }
  // a declared Content-Length over the limit is refused before a byte is read
  const res = await app.inject({ ...json(GUEST, { image: over.toString('base64').repeat(2) }) })
  t.equal(res.statusCode, 413)
  t.match(res.json().error.message, /JSON body is larger than/)
})

t.test('the v6 and v5 routes on multipart too, and their errors', async (t) => {
  const { app } = await testApp(t, { notReady: true })
  for (const url of ROUTES.slice(1)) {
    const res = await app.inject({ method: 'POST', url, payload: form(await img.jpeg({ width: 64, height: 64 })) })
    t.equal(res.statusCode, 503)
    t.match(res.json(), { success: false, error: { code: 'NOT_READY' }, message: /still loading/ })
    t.equal(res.headers['retry-after'], '5')
  }
})

t.test('one rate-limit count across the three routes', async (t) => {
  const { app } = await testApp(t, { env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_S: '60' } })
  const b64 = (await img.jpeg({ width: 64, height: 64 })).toString('base64')
  const statuses = []
  for (const url of ROUTES) statuses.push((await app.inject(json(url, { image: b64 }))).statusCode)
  t.same(statuses, [200, 200, 429])
})
