// The JSON and raw forms over a real socket: the event loop while a 25 MB photo is parsed,
// stalls, limits on a stream without Content-Length, and clients that leave mid-body.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

const ANALYZE = '/api/v2/analyze/guest'

/** A valid JPEG of `size` bytes: the pixels are small, the rest is COM segments (decoders skip them). */
async function bigJpeg (size: number): Promise<Buffer> {
  const small = await img.jpeg({ width: 640, height: 480, seed: 3 })
  const segments: Buffer[] = [small.subarray(0, 2)]
  let total = small.length
  while (total + 4 < size) {
    const n = Math.min(65533, size - total - 4)
    const seg = Buffer.alloc(4 + n, 0x20)
    seg.writeUInt16BE(0xfffe, 0)
    seg.writeUInt16BE(n + 2, 2)
    segments.push(seg)
    total += seg.length
  }
  segments.push(small.subarray(2))
  return Buffer.concat(segments)
}

interface Sent { status: number, headers: IncomingHttpHeaders, body: string }

/** POSTs `body` in 64 KiB writes, as fast as the socket takes them (no Content-Length when chunked). */
async function send (base: string, body: Buffer, headers: Record<string, string>, o: { chunked?: boolean, stopAfter?: number } = {}): Promise<Sent> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(base + ANALYZE, { method: 'POST', headers: o.chunked === true ? headers : { ...headers, 'content-length': String(body.length) } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    const end = Math.min(body.length, o.stopAfter ?? body.length)
    let at = 0
    const pump = () => {
      while (at < end) {
        const more = req.write(body.subarray(at, Math.min(end, at + 65536)))
        at += 65536
        if (!more) return void req.once('drain', pump)
      }
      if (o.stopAfter === undefined) req.end()
    }
    pump()
  })
}

/** Polls /health one request after another while `during` runs; the latencies in ms. */
async function healthLatencies (base: string, during: Promise<unknown>): Promise<number[]> {
  let done = false
  void during.finally(() => { done = true })
  const out: number[] = []
  while (!done) {
    const t0 = performance.now()
    await (await fetch(`${base}/health`)).arrayBuffer()
    out.push(performance.now() - t0)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return out
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!
  return { n: s.length, median: q(0.5), p95: q(0.95), max: s[s.length - 1]! }
}
const fmt = (x: ReturnType<typeof stats>) => `n=${x.n} median=${x.median.toFixed(1)} p95=${x.p95.toFixed(1)} max=${x.max.toFixed(1)} ms`

// The uploader runs in its own process, so that the test's /health latencies measure only the
// server's event loop (not the client's writes or its garbage collection).
const UPLOADER = `
import { createReadStream, statSync } from 'node:fs'
import { request } from 'node:http'
const [url, file, type] = process.argv.slice(1)
const req = request(url, { method: 'POST', headers: { 'content-type': type, 'content-length': statSync(file).size } }, (res) => {
  let body = ''
  res.setEncoding('utf8').on('data', (c) => { body += c }).on('end', () => { process.stdout.write(JSON.stringify({ status: res.statusCode, body: body.slice(0, 300) })) })
})
createReadStream(file, { highWaterMark: 65536 }).pipe(req)
`

async function upload (url: string, file: string, type: string): Promise<{ status: number, body: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', UPLOADER, url, file, type], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c })
  await once(child, 'close')
  return JSON.parse(out) as { status: number, body: string }
}

t.test('/health while a 25 MB photo is parsed from base64 JSON, against the same photo as multipart', async (t) => {
  const { app } = await testApp(t, { env: { MAX_UPLOAD_MB: '30', QUEUE_SIZE: '8' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const dir = t.testdir()
  const photo = await bigJpeg(25 * 1024 * 1024)
  const jsonFile = join(dir, 'body.json')
  await writeFile(jsonFile, JSON.stringify({ image: photo.toString('base64'), ethnicity: 'x' }))
  const boundary = '----shine' + 'x'.repeat(16)
  const multipartFile = join(dir, 'body.multipart')
  await writeFile(multipartFile, Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
    photo, Buffer.from(`\r\n--${boundary}--\r\n`)]))

  const idle = await healthLatencies(base, new Promise((resolve) => setTimeout(resolve, 1000)))
  const json: number[] = []
  const multipart: number[] = []
  // Rounds alternate, so a burst of load from elsewhere on the machine hits both forms alike.
  for (let round = 0; round < 3; round++) {
    const a = upload(base + ANALYZE, jsonFile, 'application/json')
    json.push(...await healthLatencies(base, a))
    t.equal((await a).status, 200, `json: ${(await a).body}`)
    const b = upload(base + ANALYZE, multipartFile, `multipart/form-data; boundary=${boundary}`)
    multipart.push(...await healthLatencies(base, b))
    t.equal((await b).status, 200, `multipart: ${(await b).body}`)
  }
  const s = { idle: stats(idle), json: stats(json), multipart: stats(multipart) }
  for (const [name, x] of Object.entries(s)) t.comment(`/health ${name}: ${fmt(x)}`)
  t.comment(`ratio json/multipart: median ${(s.json.median / s.multipart.median).toFixed(2)}, p95 ${(s.json.p95 / s.multipart.p95).toFixed(2)}, max ${(s.json.max / s.multipart.max).toFixed(2)}`)
  t.ok(s.json.n >= 5 && s.multipart.n >= 5, '/health kept answering during both uploads')
  // Ratios within this run, no absolute times.
  t.ok(s.json.median <= 3 * s.multipart.median, 'json median within 3× multipart\'s')
  t.ok(s.json.max <= 3 * s.multipart.max, 'json worst case within 3× multipart\'s')
})

t.test('a JSON upload that stalls gets 408 in the API\'s shape; a chunked one over the limit 413', async (t) => {
  const { app } = await testApp(t, { env: { UPLOAD_STALL_TIMEOUT_S: '0.3', MAX_UPLOAD_MB: '1', WORKERS: '1', QUEUE_SIZE: '1' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const body = Buffer.from(JSON.stringify({ image: img.seededBytes(600 * 1024).toString('base64') }))
  for (const type of ['application/json', 'image/jpeg']) {
    const stalled = await send(base, body, { 'content-type': type }, { stopAfter: 100 * 1024 })
    t.equal(stalled.status, 408, `${type}: ${stalled.body}`)
    t.match(JSON.parse(stalled.body), { success: false, error: { code: 'REQUEST_TIMEOUT', message: /No data arrived for 0.3 s/ } })
    t.equal(stalled.headers.connection, 'close')
  }
  const huge = Buffer.from(JSON.stringify({ image: img.seededBytes(3 * 1024 * 1024).toString('base64') }))
  for (const [type, payload] of [['application/json', huge], ['application/octet-stream', img.seededBytes(3 * 1024 * 1024)]] as const) {
    const over = await send(base, payload, { 'content-type': type, 'transfer-encoding': 'chunked' }, { chunked: true })
    t.equal(over.status, 413, `${type} chunked: ${over.body}`)
    t.match(JSON.parse(over.body), { success: false, error: { code: 'PAYLOAD_TOO_LARGE' } })
  }
  // every slot came back (WORKERS + QUEUE_SIZE = 2)
  const photo = await img.jpeg({ width: 64, height: 64 })
  const oks = await Promise.all([0, 1].map(async () => (await fetch(base + ANALYZE, { method: 'POST', body: form(photo) })).status))
  t.same(oks, [200, 200])
})

t.test('a client that leaves in the middle of a JSON body frees its slot', async (t) => {
  const { app } = await testApp(t, { env: { WORKERS: '1', QUEUE_SIZE: '1' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const body = Buffer.from(JSON.stringify({ image: img.seededBytes(2 * 1024 * 1024).toString('base64') }))
  for (let i = 0; i < 3; i++) {
    const req = httpRequest(base + ANALYZE, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length) } })
    req.on('error', () => {})
    req.write(body.subarray(0, 256 * 1024))
    await new Promise((resolve) => setTimeout(resolve, 50))
    req.destroy()
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  const photo = (await img.jpeg({ width: 64, height: 64 })).toString('base64')
  const statuses = await Promise.all([0, 1].map(async () => (await fetch(base + ANALYZE, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: photo })
  })).status))
  t.same(statuses, [200, 200])
})
