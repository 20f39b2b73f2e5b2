// Behaviour that is about HTTP itself, over a real socket.
import t, { type Test } from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

const ANALYZE = '/api/v2/analyze/guest'

async function listen (t: Test, env: Record<string, string> = {}) {
  const { app } = await testApp(t, { env: { QUEUE_SIZE: '64', ...env } })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  return address
}

t.test('an upload over MAX_UPLOAD_MB is stopped on the stream with 413', async (t) => {
  const base = await listen(t, { MAX_UPLOAD_MB: '1' })
  const big = Buffer.concat([await img.jpeg({ width: 64, height: 64 }), img.seededBytes(2 * 1024 * 1024)])
  const res = await fetch(base + ANALYZE, { method: 'POST', body: form(big) })
  t.equal(res.status, 413)
  const body = await res.json() as { error: { code: string }, requestId: string }
  t.equal(body.error.code, 'PAYLOAD_TOO_LARGE')
  t.equal(body.requestId, res.headers.get('x-request-id'))
  const ok = await fetch(base + ANALYZE, { method: 'POST', body: form(await img.jpeg({ width: 300, height: 200 })) })
  t.equal(ok.status, 200, 'the next upload under the limit is served')
})

t.test('50 parallel uploads of different images all succeed with the right sizes and stable predictions', async (t) => {
  const base = await listen(t)
  const images = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const width = 64 + i * 13
    const height = 48 + ((i * 29) % 300)
    const encode = [img.jpeg, img.png, img.webp][i % 3]!
    return { width, height, bytes: await encode({ width, height, seed: i + 1 }) }
  }))
  const post = async (bytes: Buffer) => {
    const res = await fetch(base + ANALYZE, { method: 'POST', body: form(bytes) })
    return { status: res.status, body: await res.json() as { image: { width: number, height: number }, predictions: unknown[] } }
  }
  const parallel = await Promise.all(images.map(async (i) => await post(i.bytes)))
  parallel.forEach((res, i) => {
    t.equal(res.status, 200, `image ${i}`)
    t.same(res.body.image, { width: images[i]!.width, height: images[i]!.height, format: ['jpeg', 'png', 'webp'][i % 3] }, `image ${i} size`)
  })
  for (const i of [0, 17, 49]) {
    t.same((await post(images[i]!.bytes)).body.predictions, parallel[i]!.body.predictions, `image ${i}: same predictions alone as under load`)
  }
  t.ok(new Set(parallel.map((r) => JSON.stringify(r.body.predictions))).size > 10, 'different images get different predictions')
})

t.test('a client that disconnects mid-analysis frees its slot and nothing breaks', async (t) => {
  const { app, readiness } = await testApp(t, { env: { LOG_LEVEL: 'silent' } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  // A 12 Mpx decode takes tens of ms: long enough for the abort to land before inference.
  const big = await img.jpeg({ width: 4000, height: 3000 })
  for (let i = 0; i < 3; i++) {
    const gone = new AbortController()
    const pending = fetch(base + ANALYZE, { method: 'POST', body: form(big), signal: gone.signal })
    setTimeout(() => gone.abort(), 15)
    await t.rejects(pending, { name: 'AbortError' })
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(readiness.engine!.pool.stats().inFlight, 0, 'no slot is held by a departed client')
  const res = await fetch(base + ANALYZE, { method: 'POST', body: form(await img.jpeg({ width: 80, height: 80 })) })
  t.equal(res.status, 200)
})
