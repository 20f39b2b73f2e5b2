import t from 'tap'
import { testApp } from '../helpers/app.js'

t.test('nginx\'s 413, answered by the app: the API\'s shape, its limit, the caller\'s request id', async (t) => {
  const { app } = await testApp(t, { notReady: true, env: { RATE_LIMIT_MAX: '1' } })
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/_proxy/payload-too-large?limit_mb=100', headers: { 'x-request-id': `big-${i}` } })
    t.equal(res.statusCode, 413, 'never rate limited, answered while the model loads')
    t.same(res.json(), {
      success: false,
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'The upload is larger than 100 MB; send a smaller image.' },
      message: 'The upload is larger than 100 MB; send a smaller image.',
      requestId: `big-${i}`
    })
  }
  for (const query of ['', '?limit_mb=lots', '?limit_mb=0']) {
    const res = await app.inject(`/_proxy/payload-too-large${query}`)
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().error.code, 'BAD_REQUEST')
  }
})
