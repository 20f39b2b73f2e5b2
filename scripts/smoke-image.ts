// Writes a test-fixture JPEG for the container smoke test: npx tsx scripts/smoke-image.ts <out.jpg>
import { writeFile } from 'node:fs/promises'
import { jpeg } from '../test/fixtures/images.js'

const out = process.argv[2]
if (out === undefined) throw new Error('usage: tsx scripts/smoke-image.ts <out.jpg>')
await writeFile(out, await jpeg({ width: 640, height: 480, seed: 3 }))
