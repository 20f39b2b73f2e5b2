import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { testApp } from '../helpers/app.js'

t.test('503 starting until the model is loaded, with the reason and download progress', async (t) => {
  const { app, readiness } = await testApp(t, { notReady: true })
  let res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'starting', reason: 'starting up' })
  readiness.starting('downloading the model', { downloadedBytes: 10, totalBytes: 100 })
  res = await app.inject('/health')
  t.same(res.json(), { status: 'starting', reason: 'downloading the model', model: { downloadedBytes: 10, totalBytes: 100 } })
  readiness.starting('converting the model (keras-h5)', undefined, 'converting')
  t.same((await app.inject('/health')).json(), { status: 'starting', reason: 'converting the model (keras-h5)', phase: 'converting' })
  readiness.failed('NoSuchBucket: bucket "x" does not exist')
  res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'error', reason: 'NoSuchBucket: bucket "x" does not exist' })
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal((await app.inject('/health/live')).json().status, 'alive', 'liveness answers whatever readiness says')
})

t.test('200 with model info once every worker is warm', async (t) => {
  const { app, config } = await testApp(t)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { status: 'ok', model: { name: 'tiny-test', version: 'test-1', format: 'onnx', source: 'local', demo: false, warnings: [] }, workers: 2, workerRestarts: 0 })
  t.type(body.uptimeS, 'number')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(body.threads, config.threads, 'the thread budget, warnings included')
})

t.test('a demo bundle is marked as such', async (t) => {
  const { app } = await testApp(t, { bundle: { manifest: { demo: true } } })
  const body = (await app.inject('/health')).json()
  t.equal(body.model.demo, true)
  t.match(body.model.warnings, [/demo model/])
})

t.test('stopping: 503 so the load balancer drains', async (t) => {
  const { app, readiness } = await testApp(t)
  readiness.stopping()
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'stopping', reason: 'shutting down' })
  t.ok(readiness.engine, 'in-flight work can still reach the engine')
})

t.test('while stopping, new analyses get 503 NOT_READY in our shape and connections close', async (t) => {
  const { app, readiness } = await testApp(t)
  readiness.stopping()
  const fd = new FormData()
  fd.append('image', new Blob([Buffer.from('x')]), 'a.jpg')
  const res = await app.inject({ method: 'POST', url: '/api/v2/analyze/guest', payload: fd })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { success: false, error: { code: 'NOT_READY', message: /shutting down/ }, message: /shutting down/ })
  t.equal(res.headers.connection, 'close')
  t.equal((await app.inject('/health/live')).headers.connection, 'close')
})

// Same answer on both paths, header by header that matters, in every readiness state.
async function sameOnBothPaths (t: Test, app: FastifyInstance, status: number) {
  const [health, api] = [await app.inject('/health'), await app.inject('/api/health')]
  t.equal(health.statusCode, status)
  t.equal(api.statusCode, health.statusCode)
  t.equal(api.headers['cache-control'], 'no-store')
  t.equal(api.headers['content-type'], health.headers['content-type'])
  const [a, b] = [api.json(), health.json()]
  // uptimeS moves between the two requests; everything else is identical
  if (typeof b.uptimeS === 'number') {
    t.type(a.uptimeS, 'number')
    a.uptimeS = b.uptimeS
  }
  t.same(a, b)
  return a
}

t.test('/api/health answers as /health: ready', async (t) => {
  const { app } = await testApp(t)
  const body = await sameOnBothPaths(t, app, 200)
  t.match(body, { status: 'ok', model: { name: 'tiny-test', version: 'test-1' }, workers: 2 })
})

t.test('/api/health answers as /health: starting, failed and stopping', async (t) => {
  const { app, readiness } = await testApp(t, { notReady: true })
  t.same(await sameOnBothPaths(t, app, 503), { status: 'starting', reason: 'starting up' })
  readiness.starting('downloading the model', { downloadedBytes: 10, totalBytes: 100 })
  t.same(await sameOnBothPaths(t, app, 503), { status: 'starting', reason: 'downloading the model', model: { downloadedBytes: 10, totalBytes: 100 } })
  readiness.failed('NoSuchBucket')
  t.same(await sameOnBothPaths(t, app, 503), { status: 'error', reason: 'NoSuchBucket' })

  const ready = await testApp(t)
  ready.readiness.stopping()
  t.same(await sameOnBothPaths(t, ready.app, 503), { status: 'stopping', reason: 'shutting down' }, 'not the drain hook\'s NOT_READY error')
})

t.test('a refused or pending version is shown beside the serving one, still 200', async (t) => {
  const { app, readiness } = await testApp(t)
  readiness.primary.pending = { version: 'test-2' }
  t.match((await app.inject('/health')).json(), { status: 'ok', model: { version: 'test-1', pending: { version: 'test-2' } } })
  readiness.primary.pending = { version: 'test-2', error: 'manifest has 3 labels but model.onnx\'s output shape is [N, 8]' }
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.same(res.json().model.pending, { version: 'test-2', error: 'manifest has 3 labels but model.onnx\'s output shape is [N, 8]' })
})
