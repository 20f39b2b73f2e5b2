// downloadObject on its own, against fauxqs through the fault proxy: the edges the store tests
// do not reach.
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { downloadObject, type DownloadOptions, type RetryEvent } from '../../src/models/download.js'
import { headObject } from '../../src/models/s3.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { fakeS3, scratchDir, testClient } from '../helpers/s3.js'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

async function setup (t: Test, body: Uint8Array) {
  const s3 = await fakeS3(t)
  await s3.createBucket('b')
  await s3.put('b', 'k/model.onnx', body)
  const proxy = await faultProxy(t, s3.endpoint)
  const client = testClient(proxy.endpoint)
  t.teardown(() => client.destroy())
  const object = await headObject(client, 'b', 'k/model.onnx')
  const dir = await scratchDir(t)
  const retries: RetryEvent[] = []
  const options = (over: Partial<DownloadOptions> = {}): DownloadOptions => ({
    client, bucket: 'b', object, dest: join(dir, 'model.onnx'), streams: 1, partSize: 64 * 1024,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, onRetry: (e) => retries.push(e), ...over
  })
  return { proxy, options, retries, dir }
}

t.test('an empty object downloads as an empty file', async (t) => {
  const { options } = await setup(t, new Uint8Array(0))
  const result = await downloadObject(options({ sha256: sha(new Uint8Array(0)).toUpperCase() }))
  t.same(result, { bytes: 0, sha256: sha(new Uint8Array(0)), md5: undefined })
  t.equal((await readFile(options().dest)).length, 0)
})

t.test('a body that ends early without an error is resumed', async (t) => {
  const body = randomBytes(300_000)
  const { proxy, options, retries } = await setup(t, body)
  proxy.inject({ method: 'GET', fault: { kind: 'truncate', afterBytes: 100_000 } })
  const progress: number[] = []
  const result = await downloadObject(options({ sha256: sha(body), onProgress: (received) => progress.push(received) }))
  t.equal(result.bytes, body.length)
  t.equal(retries.length, 1)
  t.match(retries[0], { reason: /body ended after 100000 of 300000 bytes/, offset: 100_000 })
  t.equal(proxy.requests.at(-1)?.range, 'bytes=100000-299999')
  t.equal(progress.at(-1), body.length)
})

t.test('a server that ignores Range is refused rather than trusted', async (t) => {
  const body = randomBytes(200_000)
  const { proxy, options, dir } = await setup(t, body)
  proxy.inject({ method: 'GET', times: Infinity, fault: { kind: 'ignoreRange' } })
  await t.rejects(downloadObject(options({ streams: 2 })), { name: 'DownloadError', message: /ignored the Range header/ })
  t.same(await readdir(dir), [], 'the partial file is deleted')
})

t.test('a reset on every attempt gives up after maxAttempts without progress', async (t) => {
  const body = randomBytes(200_000)
  const { proxy, options, retries, dir } = await setup(t, body)
  proxy.inject({ method: 'GET', times: Infinity, fault: { kind: 'reset', afterBytes: 0 } })
  await t.rejects(downloadObject(options()), { code: 'ECONNRESET' })
  t.equal(retries.length, 2, 'three attempts, two retries')
  t.same(await readdir(dir), [])
})

t.test('resets that each make progress keep resuming', async (t) => {
  const body = randomBytes(400_000)
  const { proxy, options, retries } = await setup(t, body)
  proxy.inject({ method: 'GET', times: 6, fault: { kind: 'reset', afterBytes: 50_000 } })
  const result = await downloadObject(options({ sha256: sha(body) }))
  t.equal(result.sha256, sha(body))
  t.equal(retries.length, 6, 'more resets than maxAttempts, each after progress')
})

t.test('an MD5 expectation is checked too', async (t) => {
  const body = randomBytes(10_000)
  const { options } = await setup(t, body)
  const md5 = createHash('md5').update(body).digest('hex')
  t.equal((await downloadObject(options({ md5 }))).md5, md5)
})

t.test('parallel ranges hold at most a window of parts and stop together on failure', async (t) => {
  const body = randomBytes(1024 * 1024)
  const { proxy, options, dir } = await setup(t, body)
  const result = await downloadObject(options({ streams: 3, partSize: 100_000, sha256: sha(body) }))
  t.equal(result.bytes, body.length)
  t.same(await readFile(options().dest), body)
  const ranges = proxy.requests.filter((r) => r.method === 'GET').map((r) => r.range)
  t.equal(ranges.length, 11)
  t.equal(ranges[0], 'bytes=0-99999')
  t.equal(ranges.at(-1), 'bytes=1000000-1048575')

  proxy.clear()
  proxy.inject({ method: 'GET', path: 'model.onnx', times: Infinity, fault: { kind: 'status', status: 403, code: 'AccessDenied' } })
  t.match(await downloadObject(options({ streams: 3, partSize: 100_000, dest: join(dir, 'second') })).catch((e: unknown) => e), { $metadata: { httpStatusCode: 403 } })
  t.ok(proxy.requests.length <= 3, `no part starts after the first failure (${proxy.requests.length} requests)`)
  t.notOk((await readdir(dir)).includes('second'))
})

t.test('a part that fails while others wait for the window stops them before they fetch', async (t) => {
  const body = randomBytes(600_000)
  const { proxy, options, dir } = await setup(t, body)
  const { createS3Client } = await import('../../src/models/s3.js')
  const { TEST_CREDENTIALS } = await import('../helpers/s3.js')
  const client = createS3Client({ region: 'us-east-1', endpoint: proxy.endpoint, forcePathStyle: true, connectTimeoutMs: 1000, stallTimeoutMs: 300, credentials: TEST_CREDENTIALS })
  t.teardown(() => client.destroy())
  // Part 0 goes silent; part 1 finishes, and its worker waits for part 0 before taking part 3.
  proxy.inject({ method: 'GET', range: /^bytes=0-/, fault: { kind: 'stall', afterBytes: 1000 } })
  const started = proxy.requests.length
  await t.rejects(downloadObject(options({ client, streams: 2, partSize: 100_000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } })), { name: 'TimeoutError' })
  t.same(proxy.requests.slice(started).map((r) => r.range), ['bytes=0-99999', 'bytes=100000-199999'], 'no part beyond the window was requested')
  t.same(await readdir(dir), [])
})

t.test('when the disk is slower than the network, the network waits', async (t) => {
  // Under fauxqs's ~11 MiB limit for one PutObject, and above the 8 MiB write backlog.
  const body = randomBytes(10 * 1024 * 1024)
  const { options } = await setup(t, body)
  const fs = await import('node:fs/promises')
  let writes = 0
  const slowOpen = async (...args: Parameters<typeof fs.open>) => {
    const handle = await fs.open(...args)
    const writev = handle.writev.bind(handle)
    return Object.assign(handle, {
      writev: async (...w: Parameters<typeof writev>) => {
        writes++
        // 5 MB/s: any loopback download above 25 MB/s piles up more than the 8 MiB backlog.
        await new Promise((resolve) => setTimeout(resolve, 200))
        return await writev(...w)
      }
    })
  }
  const { downloadObject: slow } = await t.mockImport<typeof import('../../src/models/download.js')>('../../src/models/download.js', {
    'node:fs/promises': { ...fs, open: slowOpen }
  })
  const result = await slow(options({ sha256: sha(body) }))
  t.equal(result.bytes, body.length)
  t.ok(writes >= 10, `batched writes (${writes})`)
  t.same(await readFile(options().dest), body)
})

t.test('a full disk fails the download cleanly: no crash, no file left', async (t) => {
  const body = randomBytes(3 * 1024 * 1024)
  const { options, dir } = await setup(t, body)
  const fs = await import('node:fs/promises')
  const fullDisk = async (...args: Parameters<typeof fs.open>) => Object.assign(await fs.open(...args), {
    writev: async () => { throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) }
  })
  const { downloadObject: failing } = await t.mockImport<typeof import('../../src/models/download.js')>('../../src/models/download.js', {
    'node:fs/promises': { ...fs, open: fullDisk }
  })
  await t.rejects(failing(options()), { code: 'ENOSPC' })
  t.same(await readdir(dir), [])
})
