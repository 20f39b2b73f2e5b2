// An HTTP proxy between the SDK and the fake S3 that injects the failures real S3 and real
// networks produce: throttling, denied access, resets mid-body, flipped bits, silent sockets,
// and (for measurements) a per-connection bandwidth cap.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Test } from 'tap'

export type Fault =
  | { kind: 'status', status: number, code: string, message?: string }
  /** Forward the response, then reset the connection after this many body bytes. */
  | { kind: 'reset', afterBytes: number }
  /** Forward the response with the byte at this body offset inverted. */
  | { kind: 'flip', atByte: number }
  /** Forward headers and this many body bytes, then send nothing while keeping the socket open. */
  | { kind: 'stall', afterBytes: number }
  /** End the body cleanly after this many bytes (chunked, so the client cannot tell from headers). */
  | { kind: 'truncate', afterBytes: number }
  /** Drop the Range header, as a server without range support would. */
  | { kind: 'ignoreRange' }

export interface Rule {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST'
  /** Matched against the request path (bucket/key). */
  path?: string | RegExp
  /** Matched against the Range header (a request without one never matches). */
  range?: RegExp
  /** How many matching requests get the fault; Infinity for all. */
  times?: number
  fault: Fault
}

export interface ProxiedRequest {
  method: string
  path: string
  range: string | undefined
  fault: Fault['kind'] | undefined
}

export interface FaultProxy {
  endpoint: string
  requests: ProxiedRequest[]
  inject: (rule: Rule) => void
  /** Caps every connection's response at this many bytes per second (0 = no cap). */
  throttle: (bytesPerSecond: number) => void
  clear: () => void
  close: () => Promise<void>
}

function errorXml (code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>FAULTPROXY</RequestId></Error>`
}

function matches (rule: Rule, req: IncomingMessage, path: string): boolean {
  if (rule.method !== undefined && rule.method !== req.method) return false
  if (rule.range !== undefined && !rule.range.test(req.headers.range ?? '')) return false
  if (rule.path === undefined) return true
  return typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path)
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

export async function startFaultProxy (target: string): Promise<FaultProxy> {
  const upstream = new URL(target)
  let rules: Array<Rule & { left: number }> = []
  let bytesPerSecond = 0
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Socket>()

  async function relay (up: IncomingMessage, res: ServerResponse, fault: Fault | undefined): Promise<void> {
    const headers = { ...up.headers }
    if (fault?.kind === 'truncate') delete headers['content-length']
    res.writeHead(up.statusCode ?? 502, headers)
    const started = performance.now()
    let sent = 0
    for await (const data of up as AsyncIterable<Buffer>) {
      let chunk = data
      if (fault?.kind === 'flip' && fault.atByte >= sent && fault.atByte < sent + chunk.length) {
        chunk = Buffer.from(chunk)
        chunk[fault.atByte - sent] = (chunk[fault.atByte - sent] as number) ^ 0xff
      }
      if ((fault?.kind === 'reset' || fault?.kind === 'stall' || fault?.kind === 'truncate') && sent + chunk.length >= fault.afterBytes) {
        const head = chunk.subarray(0, fault.afterBytes - sent)
        await new Promise<void>((resolve) => res.write(head, () => resolve()))
        up.destroy()
        // A reset is an RST on the wire; a stall keeps the socket open and silent until the
        // client gives up (or the proxy closes).
        if (fault.kind === 'reset') res.socket?.resetAndDestroy()
        if (fault.kind === 'truncate') res.end()
        return
      }
      sent += chunk.length
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve))
      if (bytesPerSecond > 0) {
        // Ahead of the allowed rate: wait until the bytes sent so far are due (timers are coarse,
        // so the wait is computed from the start rather than per chunk).
        const ahead = started + (sent / bytesPerSecond) * 1000 - performance.now()
        if (ahead > 2) await sleep(ahead)
      }
    }
    res.end()
  }

  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')
    const rule = rules.find((r) => r.left > 0 && matches(r, req, path))
    if (rule !== undefined) rule.left--
    const fault = rule?.fault
    requests.push({ method: req.method ?? '', path, range: req.headers.range, fault: fault?.kind })
    if (fault?.kind === 'status') {
      const body = req.method === 'HEAD' ? '' : errorXml(fault.code, fault.message ?? fault.code)
      req.resume()
      res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    const headers = { ...req.headers }
    if (fault?.kind === 'ignoreRange') delete headers.range
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (upRes) => {
      relay(upRes, res, fault).catch(() => res.destroy())
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    inject (rule) {
      rules.push({ ...rule, left: rule.times ?? 1 })
    },
    throttle (rate) {
      bytesPerSecond = rate
    },
    clear () {
      rules = []
      requests.length = 0
      bytesPerSecond = 0
    },
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

export async function faultProxy (t: Test, target: string): Promise<FaultProxy> {
  const proxy = await startFaultProxy(target)
  t.teardown(proxy.close)
  return proxy
}
