// How close our resize is to PIL's BILINEAR, which the replaced Flask service used: compared
// on the same decoded pixels, so only the resampling differs.
import sharp from 'sharp'
import t from 'tap'
import { decodeImage } from '../../src/imaging/preprocess.js'
import { pattern, seededBytes } from '../fixtures/images.js'
import { pilBilinear } from '../helpers/pil-resize.js'

function photoLike (width: number, height: number): Buffer {
  const p = pattern({ width, height, seed: 3 })
  const noise = seededBytes(p.length, 9)
  for (let i = 0; i < p.length; i++) p[i] = Math.min(255, Math.max(0, p[i]! + ((noise[i]! - 128) >> 2)))
  return p
}

const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length

t.test('the reference itself: an identity resize and a flat image are unchanged', async (t) => {
  const rgb = Uint8Array.from(photoLike(8, 6))
  t.same(pilBilinear(rgb, 8, 6, 8, 6), rgb)
  const flat = new Uint8Array(40 * 30 * 3).fill(77)
  t.same(pilBilinear(flat, 40, 30, 7, 5), new Uint8Array(7 * 5 * 3).fill(77))
})

for (const [width, height] of [[640, 480], [1600, 1200]] as const) {
  t.test(`${width}×${height} → 224×224 stays within ~1 grey level of PIL`, async (t) => {
    const jpeg = await sharp(photoLike(width, height), { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer()
    const decoded = await sharp(jpeg).raw().toBuffer()
    const reference = pilBilinear(decoded, width, height, 224, 224)
    const ours = await decodeImage(jpeg, 'jpeg', { width: 224, height: 224 }, { maxPixels: 1e8, timeoutS: 30 })
    const diff = meanAbsDiff(ours.rgb, reference)
    t.ok(diff < 1.5, `mean |ours − PIL| = ${diff.toFixed(2)} of 255`)
    // The kernel choice matters: lanczos3 (sharp's default) is measurably further from PIL.
    const lanczos = await sharp(jpeg).resize(224, 224, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer()
    t.ok(meanAbsDiff(lanczos, reference) > diff, 'linear is closer to PIL than lanczos3')
  })
}
