// The OpenAPI document (validated against the OpenAPI 3.1 schema) and the Swagger UI page.
import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { ERRORS } from '../../src/errors.js'
import { testApp } from '../helpers/app.js'

const ANALYZE_ROUTES = ['/api/v2/analyze/guest', '/api/v6/skin/analyze-hare-run', '/api/v5/skin/analyze-fixed']
// Every status an analyze route answers with (DESIGN.md's table, 404 aside: that is for other URLs).
const ANALYZE_STATUSES = [...new Set(Object.values(ERRORS).map((e) => String(e.status)))].filter((s) => s !== '404').sort()

interface Operation { responses: Record<string, { description: string }>, requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }
type Spec = { openapi: string, paths: Record<string, Record<string, Operation>> }

/** The routes Fastify serves, from its own route tree (method, path), without the UI's assets. */
function servedRoutes (tree: string): string[] {
  const out: string[] = []
  const stack: string[] = []
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)(?:├── |└── )(.*?) \(([A-Z, ]+)\)$/.exec(line)
    if (m === null) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    stack.push(m[2]!)
    const path = stack.join('')
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD' && method !== 'OPTIONS') out.push(`${method} ${path}`)
  }
  return out.filter((r) => !r.includes('/docs')).sort()
}

t.test('/openapi.json is a valid OpenAPI 3.1 document with every route and every status', async (t) => {
  const { app } = await testApp(t, { notReady: true })
  const res = await app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  const spec = res.json() as Spec
  t.equal(spec.openapi, '3.1.0')
  const result = await new Validator().validate(spec as unknown as Parameters<Validator['validate']>[0])
  t.same(result.errors ?? [], [], 'no validation errors')
  t.equal(result.valid, true)

  const documented = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort()
  t.same(documented, servedRoutes(app.printRoutes({ commonPrefix: false })), 'every route Fastify serves is documented')

  for (const url of ANALYZE_ROUTES) {
    const op = spec.paths[url]!.post!
    t.same(Object.keys(op.responses).sort(), ['200', ...ANALYZE_STATUSES].sort(), `${url}: every status`)
    for (const [status, r] of Object.entries(op.responses)) t.ok(r.description.length > 0, `${url} ${status} described`)
    t.match(op.responses['413']!.description, /PAYLOAD_TOO_LARGE.*IMAGE_TOO_LARGE|IMAGE_TOO_LARGE.*PAYLOAD_TOO_LARGE/, 'both 413 codes named')
    const content = op.requestBody!.content
    t.same(Object.keys(content).sort(), ['application/json', 'application/octet-stream', 'image/*', 'multipart/form-data'])
    t.match(content['multipart/form-data']!.schema, { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' } } },
      'a file picker for the photo in Swagger UI')
    t.match(content['application/json']!.schema, { properties: { image: { type: 'string' }, image_data: { type: 'string' } } })
  }
  t.match(spec.paths['/api/v6/skin/analyze-hare-run']!.post!.responses['200'], { content: { 'application/json': { schema: { properties: { result: { properties: { health_score: {} } } } } } } })
  for (const path of ['/health', '/api/health']) t.same(Object.keys(spec.paths[path]!.get!.responses).sort(), ['200', '503'], path)
  t.same(Object.keys(spec.paths['/_proxy/payload-too-large']!.get!.responses).sort(), ['400', '413'])
})

t.test('/docs: Swagger UI with its assets allowed by the CSP, never rate limited', async (t) => {
  const { app } = await testApp(t, { env: { RATE_LIMIT_MAX: '1' } })
  for (let i = 0; i < 5; i++) t.equal((await app.inject('/docs')).statusCode, 200, `visit ${i + 1}`)
  const page = await app.inject('/docs/')
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /swagger-ui-bundle\.js/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /upgrade-insecure-requests/, 'plain-http docs keep loading their scripts')
  for (const asset of ['swagger-ui-bundle.js', 'swagger-initializer.js', 'swagger-ui.css']) {
    const a = await app.inject(`/docs/static/${asset}`)
    t.equal(a.statusCode, 200, asset)
  }
  const init = await app.inject('/docs/static/swagger-initializer.js')
  t.match(init.body, /validatorUrl/)
})
