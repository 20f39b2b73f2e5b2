// The issue's reproduction on the built server: clients disconnect while their inferences run
// (wrk ending), SIGTERM follows at once. Before the fix the pool's close terminated a worker
// inside session.run: `terminate called after throwing an instance of 'Napi::Error'`, exit 134.
import { request, type ClientRequest } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { jpeg } from '../fixtures/images.js'
import { writeSlowBundle } from '../helpers/model.js'
import { spawnServer, waitReady } from '../helpers/spawn-server.js'

const UPLOADS = 4

function upload (url: string, photo: Buffer): ClientRequest {
  const boundary = 'abandoned-test-boundary'
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
    photo,
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const req = request(`${url}/api/v2/analyze/guest`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length) }
  })
  // Destroyed on purpose below; the response never comes.
  req.on('error', () => {})
  req.end(body)
  return req
}

async function until (what: string, test: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

t.test('SIGTERM right after clients abandoned their running inferences waits for them and exits 0', async (t) => {
  const dir = t.testdir()
  // ~300 ms per inference on one thread: the workers are still busy when SIGTERM lands.
  const bundle = await writeSlowBundle(join(dir, 'model'), 24)
  const server = await spawnServer(t, { MODEL_PATH: bundle.dir, MODEL_DIR: join(dir, 'cache'), WORKERS: '2', SHUTDOWN_GRACE_S: '60' })
  await waitReady(server.url)
  const photo = await jpeg({ width: 640, height: 480, seed: 3 })

  const requests = Array.from({ length: UPLOADS }, () => upload(server.url, photo))
  await until('both workers busy', async () => /^shine_workers_busy 2$/m.test(await (await fetch(`${server.url}/metrics`)).text()))
  for (const req of requests) req.destroy()
  // The server has seen the clients leave: their tasks run with nobody waiting (wrk just ended).
  await until('the clients\' departure in the log', () => (server.output().match(/"client went away"/g) ?? []).length >= 2)
  server.child.kill('SIGTERM')

  const exit = await server.exited
  const output = server.output()
  t.notMatch(output, /Napi::Error|terminate called/, 'no native abort')
  t.same(exit, { code: 0, signal: null }, `exit code 0${exit.code === 0 ? '' : `\n${output.slice(-2000)}`}`)
  const closing = /"runningInferences":(\d+)[^\n]*"closing the inference pool"/.exec(output)
  t.ok(Number(closing?.[1]) >= 1, `the pool was closed with abandoned inferences still running (${closing?.[1]})`)
  t.match(output, /"msg":"stopped"/, 'logged a clean stop')
})
