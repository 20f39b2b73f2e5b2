// Bounded fuzzing of the analyze route with mutated real encodes: the server must answer every
// case with a status from DESIGN.md's table, never crash, and give its memory back afterwards.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import * as img from '../fixtures/images.js'
import { form, testApp } from '../helpers/app.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const CASES = 240
const ALLOWED = new Set([200, 400, 413, 415, 422])

function rng (seed: number) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

type Mutation = (bytes: Buffer, r: () => number) => Buffer

const MUTATIONS: Record<string, Mutation> = {
  bitflips: (b, r) => {
    const out = Buffer.from(b)
    for (let i = 0, n = 1 + Math.floor(r() * 20); i < n; i++) out[Math.floor(r() * out.length)]! ^= 1 << Math.floor(r() * 8)
    return out
  },
  headerFlips: (b, r) => {
    const out = Buffer.from(b)
    for (let i = 0; i < 4; i++) out[Math.floor(r() * Math.min(64, out.length))]! ^= 1 << Math.floor(r() * 8)
    return out
  },
  truncate: (b, r) => b.subarray(0, Math.floor(r() * b.length)),
  insertChunk: (b, r) => {
    const at = Math.floor(r() * b.length)
    return Buffer.concat([b.subarray(0, at), img.seededBytes(1 + Math.floor(r() * 4096), Math.floor(r() * 1e6)), b.subarray(at)])
  },
  forgeDimensions: (b, r) => {
    const out = Buffer.from(b)
    const big = () => Math.floor(r() * 65535)
    if (out[0] === 0x89 && out.length > 24) { out.writeUInt32BE(big() * (r() < 0.5 ? 1 : 1000), 16); out.writeUInt32BE(big(), 20) }
    const sof = out.indexOf(Buffer.from([0xff, 0xc0]))
    if (sof > 0 && sof + 9 < out.length) { out.writeUInt16BE(big(), sof + 5); out.writeUInt16BE(big(), sof + 7) }
    if (out.toString('latin1', 12, 16) === 'VP8 ' && out.length > 30) { out.writeUInt16LE(big(), 26); out.writeUInt16LE(big(), 28) }
    return out
  }
}

t.test(`${CASES} mutated JPEG/PNG/WebP uploads`, async (t) => {
  const { app } = await testApp(t, { env: { RATE_LIMIT_MAX: '0', QUEUE_SIZE: '64' } })
  const seeds = [await img.jpeg({ width: 300, height: 200, seed: 2 }), await img.png({ width: 160, height: 120, seed: 3 }), await img.webp({ width: 200, height: 200, seed: 4 })]
  const names = Object.keys(MUTATIONS)
  const r = rng(12345)
  const run = async (n: number) => {
    const statuses = new Map<number, number>()
    for (let i = 0; i < n; i++) {
      const seed = seeds[i % seeds.length]!
      const mutation = MUTATIONS[names[Math.floor(r() * names.length)]!]!
      const res = await app.inject({ method: 'POST', url: '/api/v2/analyze/guest', payload: form(mutation(seed, r)) })
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      if (!ALLOWED.has(res.statusCode)) t.fail(`case ${i}: ${res.statusCode} ${res.body}`)
    }
    return statuses
  }
  await run(30) // warm-up: allocator pools and caches reach their working size
  gc()
  const before = process.memoryUsage()
  const statuses = await run(CASES)
  gc()
  await new Promise((resolve) => setTimeout(resolve, 200))
  gc()
  const after = process.memoryUsage()
  t.comment(`statuses ${JSON.stringify(Object.fromEntries(statuses))}; rss ${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB; heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB`)
  t.ok([...statuses.keys()].every((s) => ALLOWED.has(s)), 'only 200/400/413/415/422')
  t.ok((statuses.get(422) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0, 'the mutations reach both outcomes')
  t.ok(after.heapUsed < before.heapUsed * 1.5, 'the JS heap settles')
  t.ok(after.rss < before.rss * 1.5, 'resident memory settles')
  t.equal((await app.inject('/health')).statusCode, 200, 'still ready')
})
