// The built server as it runs in production: spawned, on the demo model, over HTTP, then SIGTERM.
import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import t from 'tap'
import * as img from './fixtures/images.js'
import { form } from './helpers/app.js'
import { spawnServer, waitReady } from './helpers/spawn-server.js'

t.test('node dist/server.js serves the demo model and stops cleanly on SIGTERM', async (t) => {
  const server = await spawnServer(t)
  const seen = await waitReady(server.url)
  if (seen.length > 1) t.match(seen[0], { status: 503, body: { status: 'starting' } }, 'answers 503 while loading')
  const health = seen.at(-1)!.body as { model: { name: string, demo: boolean, source: string } }
  t.match(health, { status: 'ok', model: { name: 'shine-demo-mobilenetv2', demo: true, source: 'local' }, workers: 2 })

  const res = await fetch(`${server.url}/api/v2/analyze/guest`, {
    method: 'POST', body: form(await img.jpeg({ width: 640, height: 480, orientation: 6 })), headers: { 'x-request-id': 'smoke-1' }
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-request-id'), 'smoke-1')
  const body = await res.json() as { model: { demo: boolean }, image: unknown, predictions: unknown[] }
  t.match(body, { model: { demo: true }, image: { width: 480, height: 640, format: 'jpeg' } })
  t.equal(body.predictions.length, 8)

  server.child.kill('SIGTERM')
  server.child.kill('SIGINT') // an impatient second signal changes nothing
  t.same(await server.exited, { code: 0, signal: null }, 'exit code 0')
  t.match(server.output(), /"msg":"stopped"/)
  t.notMatch(server.output(), /"level":50/, 'no error was logged')
})

t.test('a bad setting fails fast with one line naming the variable', async (t) => {
  await t.rejects(spawnServer(t, { WORKERS: 'many' }), /env\/WORKERS must be integer/)
})

t.test('a missing model keeps the process up with /health 503 naming the problem', async (t) => {
  const server = await spawnServer(t, { MODEL_PATH: '/nonexistent/model' })
  let body: unknown
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${server.url}/health`)
    body = await res.json()
    if ((body as { status: string }).status === 'error') break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(body, { status: 'error', reason: 'model path /nonexistent/model does not exist' })
  t.equal((await fetch(`${server.url}/health/live`)).status, 200)
  server.child.kill('SIGINT')
  t.equal((await server.exited).code, 0)
})

t.test('a request that outlives SHUTDOWN_GRACE_S does not keep the process alive', async (t) => {
  const server = await spawnServer(t, { SHUTDOWN_GRACE_S: '0.5', UPLOAD_STALL_TIMEOUT_S: '60' })
  await waitReady(server.url)
  // An upload that starts and never finishes.
  const req = request(`${server.url}/api/v2/analyze/guest`, {
    method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=B', 'transfer-encoding': 'chunked' }
  })
  req.on('error', () => {})
  req.write('--B\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 200))
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 1, signal: null })
  t.match(server.output(), /grace period over/)
  req.destroy()
})

t.test('the thread budget follows the cores the process may use, and the Procfile\'s preload sizes libuv', async (t) => {
  const cores = availableParallelism()
  for (const [cpus, expected] of [['0', 1], [`0-${cores - 1}`, cores]] as const) {
    const server = await spawnServer(t, {}, { cpus })
    const health = (await waitReady(server.url)).at(-1)!.body as { workers: number, threads: Record<string, unknown> }
    t.equal(health.workers, expected, `taskset -c ${cpus}: ${expected} workers`)
    t.same(health.threads, { cores: expected, workers: expected, intraOpThreads: 1, uvThreadpool: Math.max(4, expected), decodeThreads: 1, backgroundNice: 0, warnings: [] },
      'libuv was sized by dist/preload.cjs before the server ran; nothing to warn about')
    t.match(server.output(), new RegExp(`"threads":\\{"cores":${expected},"workers":${expected},`), 'the budget is logged at boot')
    server.child.kill('SIGTERM')
    t.same(await server.exited, { code: 0, signal: null })
  }
  const crowded = await spawnServer(t, { WORKERS: '2' }, { cpus: '0' })
  const health = (await waitReady(crowded.url)).at(-1)!.body as { threads: { warnings: string[] } }
  t.match(health.threads.warnings, [/= 2 threads of inference on 1 cores: they take turns/], 'an oversubscribed budget is shown in /health…')
  t.match(crowded.output(), /"level":40,.*"msg":"thread budget: WORKERS × INTRA_OP_THREADS = 2 threads of inference on 1 cores/, '…and logged as a warning')
  crowded.child.kill('SIGTERM')
  t.same(await crowded.exited, { code: 0, signal: null })
})
