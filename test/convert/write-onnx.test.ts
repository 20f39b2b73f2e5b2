// writeOnnx on real files; what it writes is read back by ONNX Runtime in fixtures.test.ts.
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { writeOnnx } from '../../src/convert/write-onnx.js'

t.test('the parts are written in order into one new file, with their sha256', async (t) => {
  const dir = t.testdir()
  const parts = [Uint8Array.of(1, 2), new Uint8Array(0), new Uint8Array(new Float32Array([1.5, -2]).buffer)]
  const written = await writeOnnx(parts, join(dir, 'm.onnx'))
  const bytes = await readFile(join(dir, 'm.onnx'))
  t.same([...bytes], [1, 2, ...new Uint8Array(new Float32Array([1.5, -2]).buffer)])
  t.same(written, { bytes: 10, sha256: createHash('sha256').update(bytes).digest('hex') })
  await t.rejects(writeOnnx(parts, join(dir, 'm.onnx')), { code: 'EEXIST' }, 'an existing file is never overwritten')
})

t.test('a write that fails part-way leaves no file behind', async (t) => {
  const dir = t.testdir()
  // Not a byte array: hashing it throws after the first part was written.
  const bad = [Uint8Array.of(1), 42 as unknown as Uint8Array]
  await t.rejects(writeOnnx(bad, join(dir, 'm.onnx')), { name: 'TypeError' })
  t.same(await readdir(dir), [])
})
