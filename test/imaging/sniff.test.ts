import t, { type Test } from 'tap'
import { sniffFormat } from '../../src/imaging/sniff.js'
import * as img from '../fixtures/images.js'

const small = { width: 40, height: 40 }

t.test('allowed formats are recognised from their bytes', async (t) => {
  t.equal(sniffFormat(await img.jpeg(small)), 'jpeg')
  t.equal(sniffFormat(await img.png(small)), 'png')
  t.equal(sniffFormat(await img.webp(small)), 'webp')
  t.equal(sniffFormat(await img.avif(small)), 'avif')
  t.equal(sniffFormat(await img.gif(small)), 'gif')
  t.equal(sniffFormat(Buffer.from('GIF87a......')), 'gif')
})

const refused = (t: Test, bytes: Uint8Array, message: RegExp, name: string) => {
  t.throws(() => sniffFormat(bytes), { name: 'AppError', code: 'UNSUPPORTED_MEDIA_TYPE', message }, name)
}

t.test('refused formats get 415 naming what was seen', async (t) => {
  refused(t, img.SVG, /SVG/, 'svg with xml prolog')
  refused(t, Buffer.from('\uFEFF  <svg xmlns="http://www.w3.org/2000/svg"/>'), /SVG/, 'bare svg with BOM')
  refused(t, Buffer.from('<!DOCTYPE html><html></html>'), /SVG\/XML\/HTML/, 'html')
  refused(t, img.PDF, /^PDF files/, 'pdf')
  refused(t, img.TIFF, /^TIFF/, 'tiff little-endian')
  refused(t, Buffer.from('MM\0*\0\0\0\x08'), /^TIFF/, 'tiff big-endian')
  refused(t, img.BMP, /^BMP/, 'bmp')
  refused(t, Buffer.from([0, 0, 1, 0, 1, 0, 16, 16]), /^ICO/, 'ico')
  refused(t, img.HEIC, /HEIC.*send a JPEG/, 'heic')
  refused(t, Buffer.concat([Buffer.from([0, 0, 0, 0x10]), Buffer.from('ftypmif1\0\0\0\0')]), /HEIC/, 'heif mif1 without avif brand')
  refused(t, Buffer.concat([Buffer.from([0, 0, 0, 0x14]), Buffer.from('ftypisom\0\0\0\0mp41')]), /not an image we can read/, 'mp4')
  refused(t, img.seededBytes(1000), /not an image we can read/, 'random bytes')
  refused(t, Buffer.alloc(0), /not an image we can read/, 'zero bytes')
  refused(t, Buffer.from([0xff, 0xd8]), /not an image we can read/, 'two bytes of a JPEG')
})

t.test('the client-declared type plays no part: only bytes are read', async (t) => {
  // A PNG renamed .jpg is still a PNG; a JPEG signature inside a subarray is found at its offset.
  const jpeg = await img.jpeg(small)
  const padded = Buffer.concat([Buffer.from('xxxx'), jpeg])
  t.equal(sniffFormat(padded.subarray(4)), 'jpeg')
})
