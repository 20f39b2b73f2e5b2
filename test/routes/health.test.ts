import t from 'tap'
import { testApp } from '../helpers/app.js'

t.test('503 starting until the model is loaded, with the reason and download progress', async (t) => {
  const { app, readiness } = await testApp(t, { notReady: true })
  let res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'starting', reason: 'starting up' })
  readiness.starting('downloading the model', { downloadedBytes: 10, totalBytes: 100 })
  res = await app.inject('/health')
  t.same(res.json(), { status: 'starting', reason: 'downloading the model', model: { downloadedBytes: 10, totalBytes: 100 } })
  readiness.failed('NoSuchBucket: bucket "x" does not exist')
  res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'error', reason: 'NoSuchBucket: bucket "x" does not exist' })
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal((await app.inject('/health/live')).json().status, 'alive', 'liveness answers whatever readiness says')
})

t.test('200 with model info once every worker is warm', async (t) => {
  const { app } = await testApp(t)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { status: 'ok', model: { name: 'tiny-test', version: 'test-1', format: 'onnx', source: 'local', demo: false, warnings: [] }, workers: 2, workerRestarts: 0 })
  t.type(body.uptimeS, 'number')
  t.equal(res.headers['cache-control'], 'no-store')
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
  t.match(res.json(), { error: { code: 'NOT_READY', message: /shutting down/ } })
  t.equal(res.headers.connection, 'close')
  t.equal((await app.inject('/health/live')).headers.connection, 'close')
})
