// A real browser (Debian's chromium, driven by playwright-core) on a page from another origin:
// what the team's frontend does, with CORS enforced by the browser itself, and the /docs page.
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { chromium, type Browser } from 'playwright-core'
import t, { type Test } from 'tap'
import * as img from '../fixtures/images.js'
import { testApp } from '../helpers/app.js'
import { SKIN_LABELS } from '../helpers/model.js'

const CHROMIUM = '/usr/bin/chromium'

// The page: the frontend's two ways of sending the photo (CLIENTS.md), run in the browser.
const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title><script>
async function tryFetch (url, init) {
  try {
    const res = await fetch(url, init)
    return { ok: true, status: res.status, body: await res.json() }
  } catch (err) {
    return { ok: false, error: String(err) }
  }
}
window.upload = async (api, b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
  const form = new FormData()
  form.append('image', new Blob([bytes], { type: 'image/jpeg' }), 'selfie.jpg')
  form.append('ethnicity', 'prefer not to say')
  form.append('age', '29')
  const multipart = await tryFetch(api + '/api/v2/analyze/guest', { method: 'POST', body: form })
  const json = await tryFetch(api + '/api/v6/skin/analyze-hare-run', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ image: 'data:image/jpeg;base64,' + b64 })
  })
  const fixedJson = await tryFetch(api + '/api/v5/skin/analyze-fixed', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest' }, body: JSON.stringify({ image_data: b64 })
  })
  return { multipart, json, fixedJson }
}
</script>`

async function pageServer (t: Test): Promise<string> {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

async function launch (t: Test): Promise<Browser> {
  // CI installs it (.ci/run); a machine without it fails here, loudly, rather than skipping.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (.ci/run does)`)
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(async () => await browser.close())
  return browser
}

interface Result { ok: boolean, status?: number, error?: string, body?: Record<string, any> } // eslint-disable-line @typescript-eslint/no-explicit-any -- test-side JSON
interface Results { multipart: Result, json: Result, fixedJson: Result }

t.test('a page from an allowed origin uploads as multipart and as base64 JSON; another origin is refused', async (t) => {
  const allowed = await pageServer(t)
  const stranger = await pageServer(t)
  const { app } = await testApp(t, { env: { CORS_ORIGINS: allowed } })
  const seen: string[] = []
  // At the HTTP server, before any hook: the CORS plugin answers preflights without running later ones.
  app.server.on('request', (req) => { seen.push(`${req.method} ${req.url} from ${req.headers.origin ?? '-'}`) })
  const api = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launch(t)
  const photo = (await img.jpeg({ width: 160, height: 120, seed: 21 })).toString('base64')

  const page = await browser.newPage()
  await page.goto(allowed)
  const ok = await page.evaluate(async ([a, p]) => await (globalThis as unknown as { upload: (a: string, p: string) => Promise<unknown> }).upload(a!, p!), [api, photo]) as Results
  t.match(ok.multipart, { ok: true, status: 200 }, JSON.stringify(ok.multipart).slice(0, 300))
  t.equal(ok.multipart.body!.success, true)
  t.match(ok.multipart.body!.skin_analysis, { total_conditions: SKIN_LABELS.length, ai_processed: true, ai_level: 'tiny-test test-1' })
  t.equal(ok.multipart.body!.skin_analysis.skin_conditions.length, SKIN_LABELS.length)
  t.match(ok.json, { ok: true, status: 200, body: { success: true, status: 'success', model_info: { version: 'test-1' } } }, JSON.stringify(ok.json).slice(0, 300))
  t.ok(ok.json.body!.result.primary_concerns.length > 0 || ok.json.body!.result.health_score > 50)
  t.match(ok.fixedJson, { ok: true, status: 200, body: { success: true, primary_condition: ok.multipart.body!.top.label } })
  t.same(ok.fixedJson.body!.all_predictions, Object.fromEntries(ok.multipart.body!.predictions.map((p: { label: string, confidence: number }) => [p.label, p.confidence])),
    'the same photo, the same analysis, either way')
  const preflights = seen.filter((s) => s.startsWith('OPTIONS'))
  t.same(preflights.sort(), [`OPTIONS /api/v5/skin/analyze-fixed from ${allowed}`, `OPTIONS /api/v6/skin/analyze-hare-run from ${allowed}`],
    'the JSON posts were preflighted; the plain multipart post needs none')

  seen.length = 0
  const other = await browser.newPage()
  await other.goto(stranger)
  const refused = await other.evaluate(async ([a, p]) => await (globalThis as unknown as { upload: (a: string, p: string) => Promise<unknown> }).upload(a!, p!), [api, photo]) as Results
  for (const [name, r] of Object.entries(refused)) t.match(r, { ok: false, error: /TypeError|Failed to fetch/ }, `${name}: fetch rejects for ${stranger}`)
  t.same(seen.filter((s) => s.startsWith('POST') && s.includes('analyze-hare-run')), [], 'the refused preflight kept the JSON post from being sent at all')
})

t.test('/docs renders the analyze operations and offers a file picker', async (t) => {
  const { app } = await testApp(t)
  const api = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launch(t)
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`${api}/docs`)
  const op = page.locator('.opblock-summary-path', { hasText: /^\/api\/v2\/analyze\/guest$/ })
  await op.waitFor({ timeout: 30_000 })
  for (const path of ['/api/v6/skin/analyze-hare-run', '/api/v5/skin/analyze-fixed', '/health']) {
    t.equal(await page.locator('.opblock-summary-path', { hasText: new RegExp(`^${path.replace(/\//g, '\\/')}$`) }).count(), 1, path)
  }
  await op.click()
  // tryItOutEnabled: the operation opens ready to send
  const picker = page.locator('input[type=file]').first()
  await picker.waitFor({ timeout: 10_000 })
  await picker.setInputFiles({ name: 'face.jpg', mimeType: 'image/jpeg', buffer: await img.jpeg({ width: 100, height: 100, seed: 2 }) })
  await page.getByRole('button', { name: 'Execute' }).first().click()
  const status = page.locator('.live-responses-table tr.response .response-col_status').first()
  await status.waitFor({ timeout: 30_000 })
  t.equal((await status.innerText()).trim(), '200', 'a person can pick a photo and send it')
  t.match(await page.locator('.live-responses-table tr.response .response-col_description').first().innerText(), /"success": true[\s\S]*"skin_analysis"/)
  t.same(errors.filter((e) => /Content Security Policy|Refused/.test(e)), [], 'nothing blocked by the CSP')
})
