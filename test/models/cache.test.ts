// Cache layout, markers, staging and pruning, on a real temp folder.
import { createHash } from 'node:crypto'
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import t from 'tap'
import {
  CACHE_SUBDIR, MARKER_FILE, checkEntry, commitStaging, createStaging, inspectEntry, keyDir, listEntries,
  pruneEntries, readMarker, safeSegment, touchEntry, versionName, type Marker
} from '../../src/models/cache.js'
import { hashFile } from '../../src/models/bundle.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

function marker (over: Partial<Marker> = {}): Marker {
  return { bucket: 'b', key: 'k/model.onnx', version: 'v', file: 'model.onnx', sha256: { 'model.onnx': sha('model') }, verifiedBy: 'etag-md5', downloadedAt: '2026-01-01T00:00:00Z', ...over }
}

async function writeEntry (dir: string, files: Record<string, string>, m: Marker | string | null = marker()): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  if (m !== null) await writeFile(join(dir, MARKER_FILE), typeof m === 'string' ? m : JSON.stringify(m))
}

t.test('safeSegment keeps plain names and turns anything else into one safe, distinct segment', async (t) => {
  for (const plain of ['models', 'v1', 'abc-DEF_1.2', 'a'.repeat(80)]) t.equal(safeSegment(plain), plain)
  const odd = ['', '.', '..', '../..', '/etc/passwd', 'a/b', 'a_b/', 'a b', 'ü', '.hidden', 'a'.repeat(81), 'C:\\x', 'a\0b', '~', '-x']
  const out = odd.map(safeSegment)
  for (const [i, s] of out.entries()) {
    t.match(s, /^[A-Za-z0-9][A-Za-z0-9._-]{0,59}~[0-9a-f]{16}$/, `${JSON.stringify(odd[i])} → ${s}`)
    t.equal(resolve('/root', s), `/root/${s}`, 'one segment, inside its parent')
  }
  t.equal(new Set(out).size, out.length, 'different inputs, different segments')
  t.not(safeSegment('a/b'), safeSegment('a_b'))
})

t.test('keyDir stays under MODEL_DIR/s3 whatever the bucket and key', async (t) => {
  for (const [bucket, key] of [['b', '../../../etc/passwd'], ['..', '/abs/key'], ['b', 'a/../../b'], ['b', '']]) {
    const dir = keyDir('/models', bucket!, key!)
    const rel = relative('/models/s3', dir)
    t.ok(!rel.startsWith('..') && rel.split('/').length === 2, `${bucket} ${key} → ${dir}`)
  }
  t.equal(keyDir('/m', 'bucket', 'model'), join('/m', CACHE_SUBDIR, 'bucket', 'model'))
})

t.test('versionName: the VersionId when the bucket has versioning, else the ETag', async (t) => {
  t.equal(versionName({ etag: 'abc', versionId: undefined }, { etag: 'def', versionId: undefined }), 'abc_def')
  t.equal(versionName({ etag: 'abc-2', versionId: undefined }, undefined), 'abc-2_nomanifest')
  t.match(versionName({ etag: 'abc', versionId: 'x/y' }, { etag: 'def', versionId: 'z' }), /^vx_y_vz_~[0-9a-f]{16}$/)
  t.not(versionName({ etag: 'e', versionId: 'a_vb' }, { etag: 'e', versionId: 'c' }), versionName({ etag: 'e', versionId: 'a' }, { etag: 'e', versionId: 'b_vc' }),
    'VersionIds that contain the separator do not collide')
})

t.test('markers: invalid ones are not trusted; entries re-hash against them', async (t) => {
  const dir = t.testdir()
  await writeEntry(join(dir, 'bad-json'), {}, '{')
  t.equal(await readMarker(join(dir, 'bad-json')), undefined)
  await writeEntry(join(dir, 'no-file'), {}, JSON.stringify({ ...marker(), file: 'other.onnx' }))
  t.equal(await readMarker(join(dir, 'no-file')), undefined, 'its model file must be one it hashes')
  await writeEntry(join(dir, 'no-sha'), {}, JSON.stringify({ ...marker(), sha256: null }))
  t.equal(await readMarker(join(dir, 'no-sha')), undefined)
  t.equal(await readMarker(join(dir, 'missing')), undefined)

  await writeEntry(join(dir, 'ok'), { 'model.onnx': 'model' })
  t.equal(await checkEntry(join(dir, 'ok'), marker()), undefined)
  t.match(await checkEntry(join(dir, 'ok'), marker({ sha256: { 'model.onnx': sha('other') } })), /sha256 [0-9a-f]{64} does not match the verified/)
  t.match(await checkEntry(join(dir, 'ok'), marker({ sha256: { 'gone.onnx': sha('x') } })), /sha256 missing does not match/)
  t.match(await checkEntry(join(dir, 'ok'), marker({ sha256: { '../ok/model.onnx': sha('model') } })), /unsafe file/)
  t.equal(await hashFile(join(dir, 'ok', 'model.onnx'), 'md5'), createHash('md5').update('model').digest('hex'))
})

t.test('inspectEntry also holds the marker to the hashes the manifest pins', async (t) => {
  const dir = t.testdir()
  const manifest = (pins: Record<string, string>) => JSON.stringify({
    name: 'x', version: 'v1', format: 'onnx', file: 'model.onnx', sha256: pins,
    input: { name: 'i', layout: 'NCHW', width: 8, height: 8, mean: [0, 0, 0], std: [1, 1, 1] }, output: { name: 'o', activation: 'none' }, labels: ['a']
  })
  const good = manifest({ 'model.onnx': sha('model') })
  await writeEntry(join(dir, 'good'), { 'model.onnx': 'model', 'manifest.json': good }, marker({ sha256: { 'model.onnx': sha('model'), 'manifest.json': sha(good) } }))
  t.match(await inspectEntry(join(dir, 'good')), { problem: undefined, spec: { version: 'v1' } })

  const wrong = manifest({ 'model.onnx': sha('something else') })
  await writeEntry(join(dir, 'wrong'), { 'model.onnx': 'model', 'manifest.json': wrong }, marker({ sha256: { 'model.onnx': sha('model'), 'manifest.json': sha(wrong) } }))
  t.match(await inspectEntry(join(dir, 'wrong')), { problem: 'model.onnx is not the file its manifest pins' })

  const invalid = '{"name": 1}'
  await writeEntry(join(dir, 'invalid'), { 'model.onnx': 'model', 'manifest.json': invalid }, marker({ sha256: { 'model.onnx': sha('model'), 'manifest.json': sha(invalid) } }))
  t.match(await inspectEntry(join(dir, 'invalid')), { problem: /manifest\.json is invalid/ })
  t.match(await inspectEntry(join(dir, 'none')), { marker: undefined, problem: /is missing or invalid/ })
})

t.test('staging is committed in one rename; a version another process committed first is kept', async (t) => {
  const parent = join(t.testdir(), 'key')
  const staging = await createStaging(parent)
  t.match(staging, /\/\.tmp-\d+-[0-9a-f]{12}$/)
  await writeFile(join(staging, 'model.onnx'), 'model')
  t.equal(await commitStaging(staging, join(parent, 'v1'), marker()), true)
  t.same((await readdir(join(parent, 'v1'))).sort(), [MARKER_FILE, 'model.onnx'])
  t.same(await readMarker(join(parent, 'v1')), marker())

  // A damaged copy in the way is replaced.
  const again = await createStaging(parent)
  await writeFile(join(again, 'model.onnx'), 'model')
  await writeFile(join(parent, 'v1', 'model.onnx'), 'damaged')
  t.equal(await commitStaging(again, join(parent, 'v1'), marker()), true)
  t.equal(await checkEntry(join(parent, 'v1'), marker()), undefined)

  // Losing the race: the rename finds the folder taken and our copy is dropped.
  const { commitStaging: racing } = await t.mockImport<typeof import('../../src/models/cache.js')>('../../src/models/cache.js', {
    'node:fs/promises': {
      ...(await import('node:fs/promises')),
      rename: async () => { throw Object.assign(new Error('taken'), { code: 'ENOTEMPTY' }) }
    }
  })
  const lost = await createStaging(parent)
  t.equal(await racing(lost, join(parent, 'v2'), marker()), false)
  t.same((await readdir(parent)).sort(), ['v1'], 'the losing staging folder is removed')

  const { commitStaging: failing } = await t.mockImport<typeof import('../../src/models/cache.js')>('../../src/models/cache.js', {
    'node:fs/promises': {
      ...(await import('node:fs/promises')),
      rename: async () => { throw Object.assign(new Error('read-only'), { code: 'EROFS' }) }
    }
  })
  await t.rejects(failing(await createStaging(parent), join(parent, 'v3'), marker()), { code: 'EROFS' })
})

t.test('listEntries sweeps abandoned downloads and uncommitted folders; prune keeps the most recently used', async (t) => {
  const modelDir = t.testdir()
  const root = join(modelDir, CACHE_SUBDIR)
  const key = join(root, 'b', 'k')
  const old = Date.now() / 1000 - 7200
  await writeEntry(join(key, 'v1'), { 'model.onnx': 'model' })
  await writeEntry(join(key, 'v2'), { 'model.onnx': 'model' })
  await writeEntry(join(root, 'b', 'other', 'v3'), { 'model.onnx': 'model' })
  await utimes(join(key, 'v1', MARKER_FILE), old, old)
  await writeEntry(join(key, 'uncommitted'), { 'model.onnx': 'partial' }, null)
  await writeEntry(join(key, '.tmp-999999999-aaaaaaaaaaaa'), { 'model.onnx': 'dead process' }, null)
  await writeEntry(join(key, `.tmp-${process.pid}-bbbbbbbbbbbb`), { 'model.onnx': 'in progress' }, null)
  await writeEntry(join(key, `.tmp-${process.pid}-cccccccccccc`), { 'model.onnx': 'stuck' }, null)
  for (const p of [join(key, `.tmp-${process.pid}-cccccccccccc`, 'model.onnx'), join(key, `.tmp-${process.pid}-cccccccccccc`)]) await utimes(p, old, old)

  const entries = await listEntries(root)
  t.same(entries.map((e) => relative(root, e.dir)).sort(), ['b/k/v1', 'b/k/v2', 'b/other/v3'])
  t.equal(relative(root, entries.at(-1)!.dir), 'b/k/v1', 'least recently used last')
  t.same((await readdir(key)).sort(), [`.tmp-${process.pid}-bbbbbbbbbbbb`, 'v1', 'v2'], 'a live, recent download is left alone')
  t.same((await listEntries(root, key)).map((e) => relative(root, e.dir)).sort(), ['b/k/v1', 'b/k/v2'])

  await touchEntry(join(key, 'v1'))
  t.ok((await stat(join(key, 'v1', MARKER_FILE))).mtimeMs > old * 1000 + 1000)
  const removed = await pruneEntries(modelDir, 2, join(key, 'v2'))
  t.same(removed.map((d) => relative(root, d)), ['b/other/v3'], 'keeps the one in use and the most recently used other')
  t.same(await pruneEntries(modelDir, 1, join(key, 'v2')), [join(key, 'v1')])
  t.same(await pruneEntries(modelDir, 1, join(key, 'v2')), [])
})

t.test('during a swap both versions in use are kept, whatever MODEL_CACHE_KEEP says', async (t) => {
  const modelDir = t.testdir()
  const key = join(modelDir, CACHE_SUBDIR, 'b', 'k')
  for (const v of ['v1', 'v2', 'v3']) await writeEntry(join(key, v), { 'model.onnx': v })
  t.same(await pruneEntries(modelDir, 1, [join(key, 'v1'), join(key, 'v3'), join(key, 'v3')]), [join(key, 'v2')])
  t.same((await listEntries(join(modelDir, CACHE_SUBDIR))).map((e) => e.dir).sort(), [join(key, 'v1'), join(key, 'v3')])
})

t.test('another store\'s key folder is left to it: a canary\'s versions are never pruned by the primary\'s store', async (t) => {
  const modelDir = t.testdir()
  const primary = join(modelDir, CACHE_SUBDIR, 'b', 'live')
  const canary = join(modelDir, CACHE_SUBDIR, 'b', 'canary')
  for (const v of ['v1', 'v2']) await writeEntry(join(primary, v), { 'model.onnx': v })
  for (const v of ['c1', 'c2']) await writeEntry(join(canary, v), { 'model.onnx': v })
  t.same(await pruneEntries(modelDir, 1, join(primary, 'v2'), [canary]), [join(primary, 'v1')], 'only the primary\'s older version goes')
  t.same((await listEntries(join(modelDir, CACHE_SUBDIR), canary)).map((e) => e.dir).sort(), [join(canary, 'c1'), join(canary, 'c2')])
  t.same((await pruneEntries(modelDir, 1, join(canary, 'c2'), [primary])), [join(canary, 'c1')], 'the canary\'s store prunes its own')
})

t.test('a staging folder whose files vanish while it is inspected counts as untouched', async (t) => {
  const root = join(t.testdir(), CACHE_SUBDIR)
  const key = join(root, 'b', 'k')
  await writeEntry(join(key, `.tmp-${process.pid}-dddddddddddd`), { 'model.onnx': 'x' }, null)
  const fs = await import('node:fs/promises')
  const { listEntries: racing } = await t.mockImport<typeof import('../../src/models/cache.js')>('../../src/models/cache.js', {
    'node:fs/promises': { ...fs, stat: async (p: string) => { if (p.endsWith('model.onnx')) throw Object.assign(new Error('gone'), { code: 'ENOENT' }); return await fs.stat(p) } }
  })
  await racing(root)
  t.same(await readdir(key), [`.tmp-${process.pid}-dddddddddddd`], 'the folder itself is recent: kept')
})
