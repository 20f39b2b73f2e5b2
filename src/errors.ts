// DESIGN.md's error table as data: code → HTTP status and the message a person can act on.
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request could not be read as multipart/form-data.' },
  NO_IMAGE: { status: 400, message: 'No image was sent: attach the photo as a file part named "image".' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The upload stalled; send the request again.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The upload is larger than the server accepts.' },
  IMAGE_TOO_LARGE: { status: 413, message: 'The image has more pixels than the server accepts; send a smaller photo.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send a JPEG, PNG, WebP, AVIF or GIF image.' },
  UNDECODABLE_IMAGE: { status: 422, message: 'The image file is damaged or incomplete and cannot be decoded.' },
  UNSUITABLE_IMAGE: { status: 422, message: 'The image is too small or too narrow to analyse.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; wait and try again.' },
  NOT_READY: { status: 503, message: 'The model is still loading; try again shortly.' },
  OVERLOADED: { status: 503, message: 'The server is busy; try again shortly.' },
  INFERENCE_TIMEOUT: { status: 504, message: 'The analysis took too long and was stopped; try again.' },
  INTERNAL: { status: 500, message: 'Something went wrong on our side; the request id identifies it in our logs.' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

// Seconds a client should wait before retrying, for the codes where retrying helps.
const RETRY_AFTER_S: Partial<Record<ErrorCode, number>> = { OVERLOADED: 1, NOT_READY: 5, RATE_LIMITED: 1 }

export class AppError extends Error {
  override name = 'AppError'
  readonly code: ErrorCode
  readonly retryAfterS: number | undefined

  constructor (code: ErrorCode, message?: string, opts: { cause?: unknown, retryAfterS?: number } = {}) {
    super(message ?? ERRORS[code].message, { cause: opts.cause })
    this.code = code
    this.retryAfterS = opts.retryAfterS
  }
}

/** DESIGN.md's error JSON; the top-level `message` repeats `error.message` for older pages. */
export interface ErrorBody {
  success: false
  error: { code: ErrorCode, message: string }
  message: string
  requestId: string
}

export interface ErrorReply {
  statusCode: number
  headers: Record<string, string>
  body: ErrorBody
}

/** The three request forms the analyze routes take (README "Request forms"). */
export const SEND_AS = 'Send the image as multipart/form-data (a file part "image"), as JSON {"image": "<base64>"}, or as a raw image/* body.'

// Errors thrown by Fastify, @fastify/multipart and Piscina, mapped to our codes. Messages
// for these are ours: theirs name internals ("FST_…", "busboy") that a user cannot act on.
const FOREIGN_CODES: Record<string, { code: ErrorCode, message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE' },
  FST_REQ_FILE_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE' },
  FST_PARTS_LIMIT: { code: 'PAYLOAD_TOO_LARGE', message: 'The form has too many parts; send one image.' },
  FST_FILES_LIMIT: { code: 'PAYLOAD_TOO_LARGE', message: 'The form has too many files; send one image.' },
  FST_FIELDS_LIMIT: { code: 'PAYLOAD_TOO_LARGE', message: 'The form has too many fields; send one image.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: SEND_AS },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: SEND_AS },
  FST_PROTO_VIOLATION: { code: 'BAD_REQUEST' },
  FST_NO_FORM_DATA: { code: 'BAD_REQUEST' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST', message: 'The Content-Length header does not match the body.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'BAD_REQUEST' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'BAD_REQUEST' },
  FST_ERR_VALIDATION: { code: 'BAD_REQUEST' },
  FST_ERR_REQUEST_TIMEOUT: { code: 'REQUEST_TIMEOUT' }
}

// Piscina rejects with code-less errors; these are the messages it uses (piscina/src/errors.ts).
const FOREIGN_MESSAGES: Array<{ pattern: RegExp, code: ErrorCode }> = [
  { pattern: /^Task queue is at limit$/, code: 'OVERLOADED' },
  { pattern: /^No task queue available and all Workers are busy$/, code: 'OVERLOADED' },
  // busboy's parse errors on a malformed multipart body
  { pattern: /^(Unexpected end of multipart data|Multipart: Boundary not found|Boundary required)/, code: 'BAD_REQUEST' }
]

interface ErrorLike {
  code?: unknown
  statusCode?: unknown
  message?: unknown
}

export function classifyError (err: unknown): AppError {
  if (err instanceof AppError) return err
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorLike
  const byCode = typeof e.code === 'string' ? FOREIGN_CODES[e.code] : undefined
  if (byCode !== undefined) return new AppError(byCode.code, byCode.message, { cause: err })
  const message = typeof e.message === 'string' ? e.message : ''
  const byMessage = FOREIGN_MESSAGES.find((m) => m.pattern.test(message))
  if (byMessage !== undefined) return new AppError(byMessage.code, undefined, { cause: err })
  if (e.statusCode === 429) return new AppError('RATE_LIMITED', undefined, { cause: err })
  if (e.statusCode === 413) return new AppError('PAYLOAD_TOO_LARGE', undefined, { cause: err })
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError('BAD_REQUEST', undefined, { cause: err })
  }
  return new AppError('INTERNAL', undefined, { cause: err })
}

export function toErrorReply (err: unknown, requestId: string): ErrorReply {
  const appError = classifyError(err)
  const { status } = ERRORS[appError.code]
  const headers: Record<string, string> = {}
  const retryAfter = appError.retryAfterS ?? RETRY_AFTER_S[appError.code]
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)))
  // Messages of foreign errors never reach the body (classifyError gives them ours); INTERNAL
  // always says the same thing, whatever detail was attached. The log has the full error.
  const message = appError.code === 'INTERNAL' ? ERRORS.INTERNAL.message : appError.message
  return { statusCode: status, headers, body: toErrorBody(appError.code, message, requestId) }
}

/** The one place an error body is built: every error answer has this shape. */
export function toErrorBody (code: ErrorCode, message: string, requestId: string): ErrorBody {
  return { success: false, error: { code, message }, message, requestId }
}
