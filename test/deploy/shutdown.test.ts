// SIGTERM on the built server (`node dist/server.js`, as the Procfile and the image run it) while
// an upload is still arriving: the upload finishes with 200, new connections are refused, exit 0.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { jpeg } from '../fixtures/images.js'
import { writeTinyBundle } from '../helpers/model.js'
import { REPO_ROOT } from '../helpers/nginx.js'
import { serverNodeArgs } from '../../scripts/server-node-args.js'

interface LogLine { msg?: string, [key: string]: unknown }

async function refused (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

t.test('SIGTERM drains an in-flight upload, refuses new connections and exits 0', async (t) => {
  const server = join(REPO_ROOT, 'dist', 'server.js')
  t.ok(existsSync(server), 'dist/ is built (npm test builds before tap)')
  const dir = t.testdir()
  const bundle = await writeTinyBundle(join(dir, 'model'))

  const child = spawn(process.execPath, [...serverNodeArgs(REPO_ROOT), server], {
    cwd: REPO_ROOT,
    // A clean environment: nothing from this shell (S3 settings, tap's loaders) leaks in.
    env: {
      PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', MODEL_PATH: bundle.dir, MODEL_DIR: join(dir, 'cache'),
      WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_GRACE_S: '30'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const logs: LogLine[] = []
  const waiters: Array<() => void> = []
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    const lines = stdout.split('\n')
    stdout = lines.pop() ?? ''
    for (const line of lines) logs.push(JSON.parse(line) as LogLine)
    for (const w of waiters.splice(0)) w()
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  async function logged (test: (l: LogLine) => boolean, what: string): Promise<LogLine> {
    const deadline = Date.now() + 30_000
    for (;;) {
      const hit = logs.find(test)
      if (hit !== undefined) return hit
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no "${what}" in the log; stderr: ${stderr}`)
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(200)])
    }
  }

  const listening = await logged((l) => /^Server listening at http:\/\/127\.0\.0\.1:\d+$/.test(l.msg ?? ''), 'listening')
  const port = Number(/:(\d+)$/.exec(listening.msg ?? '')?.[1])
  await logged((l) => l.msg === 'ready', 'ready')

  // A multipart upload whose bytes arrive over ~2 s, like a phone on a slow link.
  const photo = await jpeg({ width: 1600, height: 1200, seed: 9 })
  const boundary = 'sigterm-test-boundary'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/api/v2/analyze/guest',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + photo.length + tail.length),
      'x-request-id': 'in-flight-1'
    }
  })
  const response = new Promise<{ status: number, body: string }>((resolve, reject) => {
    req.once('error', reject)
    req.once('response', (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
  })
  const chunks = 20
  const size = Math.ceil(photo.length / chunks)
  req.write(head)
  req.write(photo.subarray(0, size))
  await logged((l) => l.msg === 'incoming request' && l.reqId === 'in-flight-1', 'incoming request')

  child.kill('SIGTERM')
  await logged((l) => l.msg === 'stopping: finishing in-flight requests', 'stopping')
  let refusedNew = false
  for (let i = 0; i < 40 && !refusedNew; i++) {
    refusedNew = await refused(port)
    if (!refusedNew) await sleep(50)
  }
  t.ok(refusedNew, 'a new connection is refused once SIGTERM arrived')
  t.equal(child.exitCode, null, 'the server is still finishing the upload')

  for (let i = 1; i < chunks; i++) {
    req.write(photo.subarray(i * size, (i + 1) * size))
    await sleep(100)
  }
  req.end(tail)

  const { status, body } = await response
  t.equal(status, 200, `the in-flight upload completes${status === 200 ? '' : `: ${body.slice(0, 300)}`}`)
  t.match(JSON.parse(body), { requestId: 'in-flight-1', image: { width: 1600, height: 1200, format: 'jpeg' } })
  t.same(await exited, { code: 0, signal: null }, 'exit code 0 after draining')
  t.ok(logs.some((l) => l.msg === 'stopped'), 'logged a clean stop')
})
