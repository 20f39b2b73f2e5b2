// A real Debian nginx running the repository's nginx/ config on ephemeral loopback ports.
//
// The config is rendered into a temp dir with only the lines that tie it to an Elastic Beanstalk
// host swapped (user, log and pid paths, listen port, upstream port). Each swap must match exactly
// once, so a config change that a test would silently stop covering fails here instead.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { testApp } from './app.js'

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const NGINX_SOURCE = join(REPO_ROOT, 'nginx')

/** The nginx binary, or undefined where it is not installed (.ci/run installs Debian's). */
export const NGINX_BIN = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))

export interface RenderOptions {
  /** Port nginx listens on, on 127.0.0.1. */
  listenPort: number
  /** Port of the app nginx proxies to, on 127.0.0.1. */
  upstreamPort: number
  /** Extra exact-text swaps applied after the standard ones, e.g. a shorter timeout for one test. */
  overrides?: Array<[file: string, from: string, to: string]>
}

type Swap = [file: string, from: RegExp | string, to: string]

function swaps (dir: string, o: RenderOptions): Swap[] {
  const main = 'nginx.conf'
  // Not root: nginx ignores `user` with a warning. Root: workers must be able to use the temp dir.
  const user = process.getuid?.() === 0 ? 'user root;' : '# user: nginx runs as the test user'
  return [
    [main, /^user\s+nginx;$/m, user],
    [main, /^error_log\s+\/var\/log\/nginx\/error\.log\s+warn;$/m, `error_log ${dir}/error.log info;`],
    [main, /^pid\s+\/var\/run\/nginx\.pid;$/m, `pid ${dir}/nginx.pid;`],
    [main, /^(\s*)access_log\s+\/var\/log\/nginx\/access\.log main;$/m, `$1access_log ${dir}/access.log main;`],
    [main, /^(\s*)listen\s+80 default_server;$/m, `$1listen 127.0.0.1:${o.listenPort} default_server;`],
    [main, /^(\s*)server\s+127\.0\.0\.1:8080;$/m, `$1server 127.0.0.1:${o.upstreamPort};`],
    // Keep request bodies and proxy buffers in the temp dir rather than /var/lib/nginx.
    [main, /^http \{$/m, ['http {', ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((k) => `    ${k}_temp_path ${dir}/temp/${k};`)].join('\n')],
    ...(o.overrides ?? [])
  ]
}

/** Copies an nginx config tree (nginx/ or an extracted .platform/nginx/) into dir, rendered for the tests. */
export async function renderNginx (source: string, dir: string, o: RenderOptions): Promise<string> {
  await cp(source, dir, { recursive: true })
  await mkdir(join(dir, 'temp'), { recursive: true })
  for (const [file, from, to] of swaps(dir, o)) {
    const path = join(dir, file)
    const text = await readFile(path, 'utf8')
    const hits = typeof from === 'string' ? text.split(from).length - 1 : [...text.matchAll(new RegExp(from.source, from.flags + 'g'))].length
    if (hits !== 1) throw new Error(`nginx render: ${String(from)} matched ${hits} times in ${file}, expected once`)
    await writeFile(path, typeof from === 'string' ? text.split(from).join(to) : text.replace(from, to))
  }
  return join(dir, 'nginx.conf')
}

/** `nginx -t` on a rendered config: its exit code and what it printed. */
export function nginxCheck (conf: string): { ok: boolean, output: string } {
  const r = spawnSync(NGINX_BIN ?? 'nginx', ['-t', '-e', 'stderr', '-p', resolve(conf, '..'), '-c', conf], { encoding: 'utf8' })
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` }
}

/** A port that was free a moment ago (nginx cannot report an ephemeral port it picked itself). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export interface RunningNginx {
  url: string
  port: number
  dir: string
  /** What nginx wrote to its access log so far. */
  accessLog: () => Promise<string>
}

/** Starts nginx in front of 127.0.0.1:upstreamPort; stopped when the test ends. */
export async function startNginx (t: Test, o: Omit<RenderOptions, 'listenPort'> & { source?: string }): Promise<RunningNginx> {
  if (NGINX_BIN === undefined) throw new Error('nginx is not installed: apt-get install -y nginx (.ci/run does)')
  const dir = t.testdir()
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const runDir = join(dir, `run-${attempt}`)
    const conf = await renderNginx(o.source ?? NGINX_SOURCE, runDir, { ...o, listenPort: port })
    const child = spawn(NGINX_BIN, ['-e', 'stderr', '-p', runDir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let up = false
    for (let i = 0; i < 100 && child.exitCode === null && !up; i++) {
      up = await accepts(port)
      if (!up) await sleep(50)
    }
    if (up) {
      t.teardown(async () => {
        child.kill('SIGQUIT') // graceful: finish open requests, like `nginx -s quit`
        await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
      })
      return { url: `http://127.0.0.1:${port}`, port, dir: runDir, accessLog: async () => await readFile(join(runDir, 'access.log'), 'utf8').catch(() => '') }
    }
    child.kill('SIGKILL')
    await exited
    // Another process may have taken the port between freePort() and nginx's bind.
    if (!/Address already in use/.test(stderr) || attempt >= 3) throw new Error(`nginx did not start:\n${stderr}`)
  }
}

export interface Echo {
  ip: string
  ips: string[] | undefined
  id: string
  protocol: string
  headers: Record<string, string | string[] | undefined>
}

/**
 * The real app (tiny model, real pool) on an ephemeral port behind the repo's nginx, with two
 * test-only routes: GET /_test/echo (what the app saw) and GET /_test/slow?ms=N.
 */
export async function appBehindNginx (t: Test, o: { env?: Record<string, string>, overrides?: RenderOptions['overrides'] } = {}) {
  const { app } = await testApp(t, { env: o.env })
  app.get('/_test/echo', async (request): Promise<Echo> =>
    ({ ip: request.ip, ips: request.ips, id: request.id, protocol: request.protocol, headers: request.headers }))
  app.get<{ Querystring: { ms: string } }>('/_test/slow', async (request) => {
    await sleep(Number(request.query.ms))
    return { waitedMs: Number(request.query.ms) }
  })
  let upstreamConnections = 0
  app.server.on('connection', () => { upstreamConnections++ })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const nginx = await startNginx(t, { upstreamPort: port, overrides: o.overrides })
  return { app, nginx, upstreamConnections: () => upstreamConnections }
}
