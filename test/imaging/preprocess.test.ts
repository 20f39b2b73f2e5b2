import t from 'tap'
import { checkDimensions, decodeError, decodeImage } from '../../src/imaging/preprocess.js'
import * as img from '../fixtures/images.js'

const limits = { maxPixels: 120_000_000, timeoutS: 30 }
const target = { width: 16, height: 8 }

t.test('dimension rules', async (t) => {
  t.doesNotThrow(() => checkDimensions(32, 32, 1e6))
  t.doesNotThrow(() => checkDimensions(640, 32, 1e6), 'exactly 1:20')
  t.throws(() => checkDimensions(12000, 10000, 108e6), { code: 'IMAGE_TOO_LARGE', message: /12000×10000 \(120\.0 Mpx\); the limit is 108\.0 Mpx/ })
  t.throws(() => checkDimensions(0, 100, 1e6), { code: 'UNDECODABLE_IMAGE' })
  t.throws(() => checkDimensions(31, 100, 1e6), { code: 'UNSUITABLE_IMAGE' })
  t.throws(() => checkDimensions(32, 641, 1e6), { code: 'UNSUITABLE_IMAGE', message: /1:20/ })
})

t.test('output is 8-bit RGB at the target size whatever the input', async (t) => {
  const inputs: Array<[string, Buffer, 'png' | 'jpeg' | 'gif']> = [
    ['rgba', await img.png({ width: 40, height: 40, channels: 4 }), 'png'],
    ['grey', await img.grey({ width: 40, height: 40 }), 'png'],
    ['16-bit', await img.png16({ width: 40, height: 40 }), 'png'],
    ['animated', await img.animatedGif({ width: 40, height: 40, frames: 2 }), 'gif']
  ]
  for (const [name, bytes, format] of inputs) {
    const out = await decodeImage(bytes, format, target, limits)
    t.equal(out.rgb.length, 16 * 8 * 3, name)
    t.same([out.width, out.height], [40, 40], name)
  }
})

t.test('alpha is flattened on white', async (t) => {
  // pattern() makes the left half fully transparent
  const out = await decodeImage(await img.png({ width: 64, height: 64, channels: 4 }), 'png', { width: 64, height: 64 }, limits)
  t.same([...out.rgb.subarray(0, 3)], [255, 255, 255], 'transparent pixel')
  t.notSame([...out.rgb.subarray(63 * 3, 64 * 3)], [255, 255, 255], 'opaque pixel keeps its colour')
})

t.test('the decoder must agree with the sniffed format', async (t) => {
  await t.rejects(decodeImage(await img.png({ width: 40, height: 40 }), 'jpeg', target, limits), { code: 'UNDECODABLE_IMAGE', message: /starts like JPEG/ })
  const avif = await decodeImage(await img.avif({ width: 40, height: 40 }), 'avif', target, limits)
  t.equal(avif.width, 40, 'libvips reports AVIF as heif')
})

t.test('the pixel limit applies before decoding', async (t) => {
  await t.rejects(decodeImage(await img.png({ width: 100, height: 100 }), 'png', target, { ...limits, maxPixels: 9999 }), { code: 'IMAGE_TOO_LARGE' })
})

t.test('decode failures map to what the client can act on', async (t) => {
  t.match(decodeError(new Error('Input image exceeds pixel limit')), { code: 'IMAGE_TOO_LARGE' })
  t.match(decodeError(new Error('timeout: 10% complete')), { code: 'UNSUITABLE_IMAGE', message: /too long to decode/ })
  t.match(decodeError(new Error('VipsJpeg: premature end of JPEG image')), { code: 'UNDECODABLE_IMAGE' })
  t.match(decodeError('a string'), { code: 'UNDECODABLE_IMAGE' })
})
