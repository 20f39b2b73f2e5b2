import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { SIDE_LABEL_FILES, parseLabelFile, readSideLabels } from '../../src/models/labels.js'

t.test('label files: class_names (the team\'s facial_results.json), labels, or a bare list', async (t) => {
  t.same(parseLabelFile('{"class_names":["healthy","acne"],"test_accuracy":0.97}', 'facial_results.json'), ['healthy', 'acne'])
  t.same(parseLabelFile('{"labels":["a","b"]}', 'labels.json'), ['a', 'b'])
  t.same(parseLabelFile('["x","y"]', 'class_names.json'), ['x', 'y'])
  t.throws(() => parseLabelFile('{', 'labels.json'), { name: 'ManifestError', message: /^labels\.json is not JSON/ })
  for (const text of ['{"classes":["a"]}', '{"labels":[]}', '{"labels":["a",1]}', '{"labels":[""]}', '"a"', 'null']) {
    t.throws(() => parseLabelFile(text, 'labels.json'), { message: 'labels.json has no usable labels: it needs "class_names" or "labels", a list of non-empty strings' }, text)
  }
  t.throws(() => parseLabelFile('["a","a"]', 'labels.json'), { message: 'labels.json: labels must be unique' })
})

t.test('the first label file present beside the model wins', async (t) => {
  t.same(SIDE_LABEL_FILES, ['facial_results.json', 'labels.json', 'class_names.json'])
  const dir = t.testdir({ 'labels.json': '{"labels":["b"]}', 'class_names.json': '["c"]' })
  t.same(await readSideLabels(dir), { file: 'labels.json', labels: ['b'] })
  await writeFile(join(dir, 'facial_results.json'), '{"class_names":["a"]}')
  t.same(await readSideLabels(dir), { file: 'facial_results.json', labels: ['a'] })
  t.same(await readSideLabels(dir, ['class_names.json']), { file: 'class_names.json', labels: ['c'] }, 'only the names given (what S3 downloaded)')
  t.equal(await readSideLabels(t.testdir({})), undefined)
})

t.test('an unreadable or oversized label file is a clear error', async (t) => {
  const dir = t.testdir({ 'labels.json': 'x'.repeat(8 * 2 ** 20 + 1) })
  await t.rejects(readSideLabels(dir), { message: /labels\.json is over 8388608 bytes/ })
  const other = t.testdir({})
  await mkdir(join(other, 'facial_results.json'))
  await t.rejects(readSideLabels(other), { name: 'ManifestError', message: /facial_results\.json: EISDIR/ })
})
