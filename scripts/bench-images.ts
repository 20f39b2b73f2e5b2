// Deterministic, photo-like JPEGs for the benchmark, and the multipart body that carries one.
import sharp from 'sharp'
import { mulberry32 } from './onnx-builder.js'

export interface BenchImage {
  name: string
  /** Stored pixel size; orientation 6 shows it rotated a quarter turn. */
  width: number
  height: number
  orientation: number
  bytes: Buffer
}

// The three sizes of issue 2: a web thumbnail, a resized upload, a 12 MP phone photo on its side.
const SIZES = [
  { width: 640, height: 480, orientation: 1 },
  { width: 1600, height: 1200, orientation: 1 },
  { width: 4032, height: 3024, orientation: 6 }
]

// Grain (sensor-noise amplitude, 8-bit levels) and texture cell (px) tuned so the JPEG sizes are
// those of real photos: 0.1 MB at 640×480, 0.64 MB at 1600×1200, 4.1 MB at 12 MP (quality 90).
const GRAIN = 18
const CELL = 3
const SKIN = [205, 160, 135]

/**
 * Interleaved RGB: skin-toned base, low-frequency lighting waves, a bilinear value-noise texture
 * and per-pixel grain. Flat gradients alone would compress to a few KB and decode unrealistically
 * fast; the grain gives the entropy coder real work, like a phone sensor does.
 */
function photo (width: number, height: number, seed: number): Buffer {
  const rand = mulberry32(seed)
  const gw = Math.ceil(width / CELL) + 2
  const grid = new Float32Array(gw * (Math.ceil(height / CELL) + 2)).map(() => rand() - 0.5)
  const waves = Array.from({ length: 4 }, () => ({
    fx: (rand() * 3 + 0.5) * 2 * Math.PI / width,
    fy: (rand() * 3 + 0.5) * 2 * Math.PI / height,
    phase: rand() * 2 * Math.PI,
    amplitude: 20 + rand() * 20
  }))
  const out = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    const iy = Math.floor(y / CELL)
    const ty = y / CELL - iy
    for (let x = 0; x < width; x++) {
      const ix = Math.floor(x / CELL)
      const tx = x / CELL - ix
      const r0 = iy * gw + ix
      const r1 = r0 + gw
      const texture = (grid[r0]! * (1 - tx) + grid[r0 + 1]! * tx) * (1 - ty) + (grid[r1]! * (1 - tx) + grid[r1 + 1]! * tx) * ty
      let light = 0
      for (const w of waves) light += w.amplitude * Math.cos(x * w.fx + y * w.fy + w.phase)
      const grain = (rand() + rand() - 1) * GRAIN
      const shade = texture * 40 + light
      const i = (y * width + x) * 3
      out[i] = Math.max(0, Math.min(255, SKIN[0]! + shade + grain))
      out[i + 1] = Math.max(0, Math.min(255, SKIN[1]! + shade * 0.9 + light * 0.2 + grain))
      out[i + 2] = Math.max(0, Math.min(255, SKIN[2]! + shade * 0.8 - light * 0.2 + grain))
    }
  }
  return out
}

export async function makeImages (): Promise<BenchImage[]> {
  const images: BenchImage[] = []
  for (const [n, size] of SIZES.entries()) {
    const { width, height, orientation } = size
    const bytes = await sharp(photo(width, height, 0xbe7c + n), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .withMetadata({ orientation })
      .toBuffer()
    const name = `${width}×${height}${orientation === 1 ? '' : ` o${orientation}`}`
    images.push({ name, width, height, orientation, bytes })
  }
  return images
}

// Fixed, so the body is byte-identical from run to run.
const BOUNDARY = '----shine-bench-7d3f0a1c'

/** A multipart/form-data body with one file field `image`, built once per image. */
export function multipartBody (bytes: Buffer): { body: Buffer, contentType: string } {
  const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="bench.jpg"\r\n` +
    'Content-Type: image/jpeg\r\n\r\n'
  return {
    body: Buffer.concat([Buffer.from(head, 'latin1'), bytes, Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'latin1')]),
    contentType: `multipart/form-data; boundary=${BOUNDARY}`
  }
}

/** The JSON body the later frontend sends: `{"image": "data:image/jpeg;base64,…"}` (CLIENTS.md). */
export function jsonBody (bytes: Buffer): { body: Buffer, contentType: string } {
  return {
    body: Buffer.from(JSON.stringify({ image: `data:image/jpeg;base64,${bytes.toString('base64')}` }), 'latin1'),
    contentType: 'application/json'
  }
}
