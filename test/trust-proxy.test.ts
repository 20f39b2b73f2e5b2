// TRUST_PROXY: which hops may set X-Forwarded-For (nginx on the host; nginx + ALB on Elastic Beanstalk).
import t from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { Readiness } from '../src/readiness.js'

t.test('TRUST_PROXY parses to what Fastify trustProxy accepts', async (t) => {
  t.same(loadConfig({}).trustProxy, ['loopback'], 'default: nginx on the same host')
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: ' false ' }).trustProxy, false)
  t.same(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,172.16.0.0/12 ,fd00::/8,192.0.2.1,::1' }).trustProxy,
    ['loopback', '10.0.0.0/8', '172.16.0.0/12', 'fd00::/8', '192.0.2.1', '::1'])
  t.same(loadConfig({ TRUST_PROXY: ' , ' }).trustProxy, [], 'an empty list trusts nobody')
  t.ok(Object.isFrozen(loadConfig({ TRUST_PROXY: 'uniquelocal,linklocal' }).trustProxy))
})

t.test('a bad TRUST_PROXY entry is named', async (t) => {
  for (const bad of ['proxy.example', '2', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/x', '10.0.0.0/8/1', '1.2.3']) {
    t.throws(() => loadConfig({ TRUST_PROXY: `loopback,${bad}` }), new ConfigError(
      `invalid configuration: TRUST_PROXY entry "${bad}" must be an IP address, a CIDR range, loopback, linklocal or uniquelocal`), bad)
  }
})

t.test('the app takes the client address from X-Forwarded-For only through trusted hops', async (t) => {
  async function ipSeen (env: Record<string, string>, remoteAddress: string, xff: string) {
    const app = buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', ...env }), readiness: new Readiness() })
    t.teardown(async () => await app.close())
    app.get('/_test/ip', async (request) => ({ ip: request.ip }))
    const res = await app.inject({ url: '/_test/ip', remoteAddress, headers: { 'x-forwarded-for': xff } })
    return (res.json() as { ip: string }).ip
  }
  // nginx on the host appends the address it saw: the client's, or the ALB's.
  t.equal(await ipSeen({}, '127.0.0.1', '203.0.113.7'), '203.0.113.7', 'loopback nginx is trusted')
  t.equal(await ipSeen({}, '198.51.100.9', '203.0.113.7'), '198.51.100.9', 'a direct client cannot claim another address')
  t.equal(await ipSeen({ TRUST_PROXY: 'false' }, '127.0.0.1', '203.0.113.7'), '127.0.0.1', 'false: the socket address only')
  // Elastic Beanstalk: client → ALB (appends the client) → nginx (appends the ALB) → app.
  t.equal(await ipSeen({ TRUST_PROXY: 'loopback,uniquelocal' }, '127.0.0.1', '6.6.6.6, 203.0.113.7, 10.0.3.4'), '203.0.113.7',
    'nginx and a VPC-addressed ALB: the address the ALB saw, not one the client wrote')
})
