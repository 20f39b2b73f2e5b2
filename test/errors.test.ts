import t from 'tap'
import { AppError, classifyError, ERRORS, toErrorBody, toErrorReply } from '../src/errors.js'

t.test('every table entry maps to its status and JSON shape', async (t) => {
  for (const [code, { status, message }] of Object.entries(ERRORS)) {
    const reply = toErrorReply(new AppError(code as keyof typeof ERRORS), 'req-1')
    t.equal(reply.statusCode, status, code)
    t.same(reply.body, { success: false, error: { code, message }, message, requestId: 'req-1' })
  }
})

t.test('retry hints on the codes where retrying helps', async (t) => {
  t.equal(toErrorReply(new AppError('OVERLOADED'), 'r').headers['retry-after'], '1')
  t.equal(toErrorReply(new AppError('NOT_READY'), 'r').headers['retry-after'], '5')
  t.equal(toErrorReply(new AppError('RATE_LIMITED', undefined, { retryAfterS: 7.2 }), 'r').headers['retry-after'], '8')
  t.same(toErrorReply(new AppError('NO_IMAGE'), 'r').headers, {})
})

t.test('foreign errors are mapped by code, message or status', async (t) => {
  const cases: Array<[unknown, string, number]> = [
    [Object.assign(new Error('x'), { code: 'FST_REQ_FILE_TOO_LARGE', statusCode: 413 }), 'PAYLOAD_TOO_LARGE', 413],
    [Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 'PAYLOAD_TOO_LARGE', 413],
    [Object.assign(new Error('x'), { code: 'FST_FILES_LIMIT' }), 'PAYLOAD_TOO_LARGE', 413],
    [Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 'UNSUPPORTED_MEDIA_TYPE', 415],
    [Object.assign(new Error('x'), { code: 'FST_INVALID_MULTIPART_CONTENT_TYPE', statusCode: 406 }), 'UNSUPPORTED_MEDIA_TYPE', 415],
    [Object.assign(new Error('x'), { code: 'FST_ERR_VALIDATION', statusCode: 400 }), 'BAD_REQUEST', 400],
    [new Error('Task queue is at limit'), 'OVERLOADED', 503],
    [new Error('Unexpected end of multipart data'), 'BAD_REQUEST', 400],
    [new Error('Multipart: Boundary not found'), 'BAD_REQUEST', 400],
    [Object.assign(new Error('x'), { code: 'FST_PROTO_VIOLATION' }), 'BAD_REQUEST', 400],
    [Object.assign(new Error('x'), { statusCode: 429 }), 'RATE_LIMITED', 429],
    [Object.assign(new Error('x'), { statusCode: 413 }), 'PAYLOAD_TOO_LARGE', 413],
    [Object.assign(new Error('x'), { statusCode: 404 }), 'BAD_REQUEST', 400],
    [new TypeError('cannot read properties of undefined'), 'INTERNAL', 500],
    ['a string was thrown', 'INTERNAL', 500],
    [null, 'INTERNAL', 500]
  ]
  for (const [err, code, status] of cases) {
    const reply = toErrorReply(err, 'r')
    t.equal(reply.body.error.code, code, String((err as Error)?.message ?? err))
    t.equal(reply.statusCode, status)
  }
  t.equal(classifyError(new AppError('NO_IMAGE')).code, 'NO_IMAGE')
})

t.test('5xx bodies never carry the internal message', async (t) => {
  const reply = toErrorReply(new Error('ENOENT: /srv/secret/path/model.onnx'), 'r')
  t.equal(reply.body.error.message, ERRORS.INTERNAL.message)
  t.notMatch(JSON.stringify(reply.body), /secret|ENOENT|at /)
  const internal = toErrorReply(new AppError('INTERNAL', 'worker 3 hung in /opt/x'), 'r')
  t.equal(internal.body.error.message, ERRORS.INTERNAL.message)
  const piscina = toErrorReply(new Error('Task queue is at limit'), 'r')
  t.equal(piscina.body.error.message, ERRORS.OVERLOADED.message, 'a foreign 5xx gets our message')
  t.equal(toErrorReply(new AppError('UNSUITABLE_IMAGE', 'The image is 20×200'), 'r').body.error.message, 'The image is 20×200', '4xx messages are kept')
})

t.test('toErrorBody: success false and a top-level message equal to error.message', async (t) => {
  const body = toErrorBody('UNSUITABLE_IMAGE', 'The image is 20×200', 'r-9')
  t.same(body, { success: false, error: { code: 'UNSUITABLE_IMAGE', message: 'The image is 20×200' }, message: 'The image is 20×200', requestId: 'r-9' })
  t.equal(body.success, false)
  t.equal(body.message, body.error.message)
  for (const err of [new AppError('NO_IMAGE', 'custom'), new AppError('INTERNAL', 'detail /opt/x'), new Error('Task queue is at limit'), null]) {
    const reply = toErrorReply(err, 'r')
    t.equal(reply.body.success, false)
    t.equal(reply.body.message, reply.body.error.message, 'the two messages never differ')
  }
  t.equal(toErrorReply(new AppError('INTERNAL', 'detail /opt/x'), 'r').body.message, ERRORS.INTERNAL.message, 'the top-level message hides internals too')
})
