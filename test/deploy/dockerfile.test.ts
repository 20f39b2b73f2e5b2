// What the Dockerfile must promise. The container smoke test in .ci/run builds and runs the image
// for real (healthy, non-root, one analysis, clean SIGTERM stop); these checks name each promise.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { REPO_ROOT } from '../helpers/nginx.js'

const read = async (file: string) => await readFile(join(REPO_ROOT, file), 'utf8')

t.test('Dockerfile', async (t) => {
  const text = await read('Dockerfile')
  const lines = text.split('\n')
  t.equal(lines[0], 'ARG BASE_IMAGE=node:24-bookworm-slim', 'Node 24 LTS, and a base CI can swap')
  t.equal(lines[1], 'FROM ${BASE_IMAGE} AS build')
  t.notMatch(text, /^#\s*syntax\s*=/m, 'no syntax line: builds with any builder, offline')
  t.equal(text.match(/^FROM /gm)?.length, 2, 'two stages: build and runtime')
  t.match(text, /^ENV ONNXRUNTIME_NODE_INSTALL=skip$/m)
  t.match(text, /npm prune --omit=dev/, 'the runtime gets production dependencies only')
  t.match(text, /onnxruntime-node\/bin\/napi-v6/, 'ONNX Runtime binaries for other platforms are pruned')
  t.match(text, /libjemalloc2/)
  t.match(text, /LD_PRELOAD=libjemalloc\.so\.2/)
  t.match(text, /^USER node$/m)
  t.match(text, /^EXPOSE 8000$/m)
  t.match(text, /^HEALTHCHECK .*\n.*fetch\(.*\/health\/live/m, 'HEALTHCHECK on liveness with Node\'s fetch')
})

t.test('Procfile starts the build with the thread-pool preload, the same command as the image', async (t) => {
  const procfile = await read('Procfile')
  t.equal(procfile, 'web: node --require ./dist/preload.cjs --enable-source-maps --initial-old-space-size=256 dist/server.js\n')
  const cmd = /^CMD (\[.*\])$/m.exec(await read('Dockerfile'))
  t.ok(cmd, 'the image has a CMD')
  t.equal((JSON.parse(cmd![1]!) as string[]).join(' '), procfile.replace(/^web: /, '').trim(), 'CMD = Procfile')
  const start = (JSON.parse(await read('package.json')) as { scripts: { start: string } }).scripts.start
  t.equal(start, procfile.replace(/^web: /, '').trim(), 'npm start = Procfile')
})

t.test('.dockerignore keeps local state out of the build context', async (t) => {
  const ignored = (await read('.dockerignore')).split('\n').map((l) => l.trim())
  for (const entry of ['**/node_modules', 'dist', 'models', '.git', '.tap', 'coverage']) t.ok(ignored.includes(entry), entry)
})
