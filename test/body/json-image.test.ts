import t from 'tap'
import { Base64Decoder } from '../../src/body/base64.js'
import { ImageValue } from '../../src/body/image-value.js'
import { JsonImageScanner } from '../../src/body/json-image.js'
import { AppError } from '../../src/errors.js'
import { seededBytes } from '../fixtures/images.js'

const BYTES = seededBytes(3001) // 3001 % 3 = 1: the unpadded form ends with two digits

// Every way their clients wrote the same bytes.
const b64 = BYTES.toString('base64')
const FORMS: Record<string, string> = {
  padded: b64,
  unpadded: b64.replace(/=+$/, ''),
  'url-safe': BYTES.toString('base64url'),
  'MIME line breaks': b64.replace(/.{76}/g, '$&\r\n'),
  'data: URL': `data:image/jpeg;base64,${b64}`,
  'data: URL, url-safe, unpadded': `data:image/png;base64,${BYTES.toString('base64url')}`
}

function chunked (text: string | Buffer, size: number): Buffer[] {
  const bytes = Buffer.from(text)
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

function scan (json: string | Buffer, chunk = 7, max = 1 << 20) {
  const scanner = new JsonImageScanner(max)
  for (const c of chunked(json, chunk)) scanner.push(c)
  return scanner.end()
}

function codeOf (fn: () => unknown): { code: string, message: string } | undefined {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof AppError, `an AppError, not ${String(err)}`)
    return { code: (err as AppError).code, message: (err as AppError).message }
  }
  return undefined
}

t.test('base64 decoder: every form decodes to the same bytes, whatever the chunking', async (t) => {
  for (const [name, text] of Object.entries(FORMS)) {
    if (name.startsWith('data:')) continue
    for (const size of [1, 2, 3, 5, 64, 100000]) {
      const d = new Base64Decoder('image', 1 << 20)
      for (const c of chunked(text, size)) d.push(c)
      t.ok(d.end().equals(BYTES), `${name}, chunks of ${size}`)
    }
  }
})

t.test('base64 decoder: refusals name the field and say why', async (t) => {
  const bad = (text: string, max = 1 << 20) => codeOf(() => { const d = new Base64Decoder('image_data', max); d.push(Buffer.from(text)); d.end() })
  t.match(bad('abc$def'), { code: 'BAD_REQUEST', message: /"image_data" is not valid base64: "\$" is not/ })
  t.match(bad('abcd\x01'), { code: 'BAD_REQUEST', message: /\\x01/ })
  t.match(bad('QQ==QUJD'), { code: 'BAD_REQUEST', message: /after the "=" padding/ })
  t.match(bad('QUJDR'), { code: 'BAD_REQUEST', message: /lone character/ })
  t.match(bad('QUJD'.repeat(30), 89), { code: 'PAYLOAD_TOO_LARGE', message: /"image_data" is larger than/ })
  t.match(bad('QUJDRA', 3), { code: 'PAYLOAD_TOO_LARGE' }, 'the limit holds for the last, unpadded quantum too')
  t.equal(bad('QUJD'.repeat(30), 90), undefined, 'exactly at the limit passes')
})

t.test('a data: URL prefix is dropped, split anywhere; other data: URLs are refused', async (t) => {
  for (const size of [1, 4, 5, 6, 23, 24, 1000]) {
    const v = new ImageValue('image', 1 << 20)
    for (const c of chunked(FORMS['data: URL']!, size)) v.push(c)
    t.ok(v.end().equals(BYTES), `chunks of ${size}`)
  }
  const bad = (text: string) => codeOf(() => { const v = new ImageValue('image', 1 << 20); v.push(Buffer.from(text)); v.end() })
  t.match(bad('data:image/jpeg,rawbytes'), { code: 'BAD_REQUEST', message: /"image" is a data: URL that is not/ })
  t.match(bad(`data:${'x'.repeat(300)}`), { code: 'BAD_REQUEST', message: /data: URL/ }, 'no comma within 256 bytes')
  t.match(bad('data:image/png;base64'), { code: 'BAD_REQUEST', message: /data: URL/ }, 'a header and nothing else')
  const short = new ImageValue('image', 10)
  short.push(Buffer.from('QQ'))
  t.same([...short.end()], [0x41], 'a value shorter than "data:" is base64 all the same')
})

t.test('JSON bodies: image or image_data, every form, other fields ignored, any chunking', async (t) => {
  for (const [name, text] of Object.entries(FORMS)) {
    for (const field of ['image', 'image_data']) {
      const json = JSON.stringify({ user_demographics: { age: 31, ethnicity: 'x "quoted" }' }, [field]: text, tags: ['a', { b: [1, 2] }], n: null })
      for (const size of [1, 3, 64, 65536]) {
        const got = scan(json, size)
        t.equal(got.field, field)
        t.ok(got.bytes.equals(BYTES), `${name} in ${field}, chunks of ${size}`)
      }
    }
  }
  // JSON's escapes: "\/" (PHP, Java encoders), "\n" line breaks, \u-escaped ASCII, spaces everywhere
  const escaped = `  {\n "image" :  "${b64.replace(/.{60}/g, '$&\\n').replace(/\//g, '\\/').replace(/A/g, '\\u0041')}"  }  \n`
  t.ok(scan(escaped, 5).bytes.equals(BYTES), 'escaped solidus, \\n and \\u0041')
  t.same(scan('{"x":1,"image":""}').bytes.length, 0, 'an empty string is an empty image (NO_IMAGE later)')
})

t.test('JSON bodies that are not what the route takes', async (t) => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['empty', '', 'BAD_REQUEST', /body is empty/],
    ['an array', '[{"image":"QQ=="}]', 'BAD_REQUEST', /send a JSON object/],
    ['truncated', '{"image":"QUJD', 'BAD_REQUEST', /ends early/],
    ['no photo', '{"photo":"QUJD"}', 'NO_IMAGE', /"image" \(or "image_data"\)/],
    ['an empty object', '{}', 'NO_IMAGE', /base64/],
    ['not base64', '{"image":"this is not base64!"}', 'BAD_REQUEST', /"image" is not valid base64/],
    ['not base64 in image_data', '{"image_data":"héllo"}', 'BAD_REQUEST', /"image_data" is not valid base64/],
    ['a number', '{"image": 12}', 'BAD_REQUEST', /"image" must be a base64 string/],
    ['null', '{"image_data": null}', 'BAD_REQUEST', /"image_data" must be a base64 string/],
    ['both fields', '{"image":"QUJD","image_data":"QUJD"}', 'BAD_REQUEST', /"image" and "image_data" are both present/],
    ['a non-ASCII \\u escape', '{"image":"QU\\u00e9D"}', 'BAD_REQUEST', /"image" is not valid base64: it holds "\\u00e9"/],
    ['a bad \\u escape', '{"image":"QU\\uzzzzD"}', 'BAD_REQUEST', /\\uzzzz/],
    ['a bad other value', '{"age": 3x, "image":"QUJD"}', 'BAD_REQUEST', /value of "age" is not valid JSON/],
    ['a missing value', '{"age": , "image":"QUJD"}', 'BAD_REQUEST', /value of "age"/],
    ['a bad key', '{"a\\x":1}', 'BAD_REQUEST', /field name is not a valid JSON string/],
    ['no colon', '{"image" "QUJD"}', 'BAD_REQUEST', /expected ":"/],
    ['no key', '{,}', 'BAD_REQUEST', /expected a field name/],
    ['a trailing comma', '{"a":1,}', 'BAD_REQUEST', /expected a field name/],
    ['junk after the image', '{"image":"QUJD" x}', 'BAD_REQUEST', /expected "," or "}"/],
    ['junk after the object', '{"image":"QUJD"} {}', 'BAD_REQUEST', /more after the object/],
    ['a long key', `{"${'k'.repeat(201)}":1}`, 'PAYLOAD_TOO_LARGE', /field name is too long/],
    ['large other fields', `{"notes":"${'n'.repeat(70000)}","image":"QUJD"}`, 'PAYLOAD_TOO_LARGE', /besides the image are too large/]
  ]
  for (const [name, json, code, message] of cases) t.match(codeOf(() => scan(json)), { code, message }, name)
  t.match(codeOf(() => scan(`{"image":"${b64}"}`, 64, 100)), { code: 'PAYLOAD_TOO_LARGE' }, 'the decoded limit')
})
