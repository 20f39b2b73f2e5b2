// Every Keras fixture, in every saved form (Keras 3 .h5 and .keras, the tf.keras 2 layout, TF.js),
// converted and run in ONNX Runtime against the outputs Keras itself gave (test/fixtures/keras).
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { convertKerasFile, type KerasFormat } from '../../src/convert/convert.js'
import { detectFormat } from '../../src/convert/detect.js'
import { writeOnnx } from '../../src/convert/write-onnx.js'
import { kerasCases, maxAbsDiff, runOnnx } from '../helpers/keras-fixtures.js'

const TOLERANCE = 1e-5
const FORMATS: Record<string, KerasFormat> = { 'model.h5': 'keras-h5', 'model-keras2-layout.h5': 'keras-h5', 'model.keras': 'keras', 'model.json': 'tfjs' }

for (const c of kerasCases()) {
  // keras2-* cases: the real tf.keras 2 files are restored by scripts/keras/reference_keras2.py
  // from public repositories and are not committed (test/fixtures/keras/README.md).
  const skip = c.files.length === 0 ? 'the real Keras 2 file is not restored on this machine' : false
  t.test(c.name, { skip }, async (t) => {
    for (const file of c.files) {
      const base = file.split('/').at(-1) as string
      const format = await detectFormat(file)
      t.equal(format, FORMATS[base], `${base} is detected as ${FORMATS[base]}`)
      const dir = t.testdir()
      const { parts, summary } = await convertKerasFile(file, format as KerasFormat, dir)
      // Through the file the converter writes for the server (writeOnnx), read back as ONNX Runtime would.
      const written = await writeOnnx(parts, join(dir, 'converted.onnx'))
      const onnx = await readFile(join(dir, 'converted.onnx'))
      t.equal(written.bytes, onnx.length)
      t.equal(written.sha256, createHash('sha256').update(onnx).digest('hex'))
      const outputs = await runOnnx(onnx, c.inputs)
      t.equal(outputs.length, c.outputs.length, `${base}: one ONNX output per Keras output`)
      outputs.forEach((out, i) => {
        const d = maxAbsDiff(out, (c.outputs[i] as { data: Float32Array }).data)
        t.ok(d <= TOLERANCE, `${base} output ${i}: max |Δ| ${d.toExponential(2)} ≤ ${TOLERANCE}`)
      })
      t.ok(Object.keys(summary.layers).length > 0, `${base}: layers counted`)
      t.equal(summary.inputs[0]?.dims[0], 'N', `${base}: the batch is dynamic`)
    }
  })
}
