// `npm run bundle`: the Elastic Beanstalk source bundle, opened and checked the way EB will use it.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import t from 'tap'
import yauzl from 'yauzl'
import { bundleEntries } from '../../scripts/bundle.js'
import { nginxCheck, renderNginx, REPO_ROOT } from '../helpers/nginx.js'

interface ZipEntry { name: string, madeBy: number, mode: number, data: Buffer }

async function readZip (path: string): Promise<ZipEntry[]> {
  return await new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, decodeStrings: false }, (err, zip) => {
      if (err !== null) return reject(err)
      const entries: ZipEntry[] = []
      zip.on('error', reject)
      zip.on('end', () => resolve(entries))
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (err, stream) => {
          if (err !== null) return reject(err)
          const chunks: Buffer[] = []
          stream.on('data', (c: Buffer) => chunks.push(c))
          stream.on('end', () => {
            entries.push({
              // Raw bytes: yauzl would reject a "\" name before we could report it.
              name: (entry.fileName as unknown as Buffer).toString('utf8'),
              madeBy: entry.versionMadeBy >> 8,
              mode: entry.externalFileAttributes >>> 16,
              data: Buffer.concat(chunks)
            })
            zip.readEntry()
          })
        })
      })
      zip.readEntry()
    })
  })
}

// What Elastic Beanstalk's Node.js platform on Amazon Linux 2023 needs at the bundle root.
const REQUIRED = [
  'Procfile', 'package.json', 'package-lock.json',
  'dist/server.js', 'dist/preload.cjs', 'dist/app.js', 'dist/inference/worker.js',
  '.ebextensions/01-instances.config', '.ebextensions/02-load-balancer.config',
  '.platform/nginx/nginx.conf', '.platform/nginx/conf.d/elasticbeanstalk/00_application.conf',
  'models/demo/manifest.json', 'models/demo/model.onnx'
]

// Elastic Beanstalk's own files that our nginx.conf includes on an instance with enhanced health,
// as its "Enhanced health log format" page documents them: our config must load beside them.
const EB_PLATFORM_FILES: Record<string, string> = {
  'conf.d/healthd_logformat.conf': `log_format healthd '$msec"$uri"'\n    '$status"$request_time"$upstream_response_time"'\n    '$http_x_forwarded_for';\n`,
  'conf.d/elasticbeanstalk/healthd.conf': [
    'if ($time_iso8601 ~ "^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2})") {',
    '    set $year $1;', '    set $month $2;', '    set $day $3;', '    set $hour $4;', '}',
    'access_log /var/log/nginx/healthd/application.log.$year-$month-$day-$hour healthd;', ''
  ].join('\n')
}

t.test('npm run bundle builds a zip EB can use', async (t) => {
  t.ok(existsSync(join(REPO_ROOT, 'dist', 'server.js')), 'dist/ is built (npm test builds before tap)')
  const dir = t.testdir()
  const out = join(dir, 'bundle.zip')
  // The script behind `npm run bundle`, with the dist/ that `npm test` just built.
  const tsx = createRequire(import.meta.url).resolve('tsx/cli')
  const run = spawnSync(process.execPath, [tsx, 'scripts/bundle.ts', '--skip-build', '--out', out], { cwd: REPO_ROOT, encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr)
  t.match(run.stdout, /bundle\.zip: \d+ files/)

  const entries = await readZip(out)
  const names = entries.map((e) => e.name)
  t.same(names.filter((n) => n.includes('\\')), [], '"/" separators only')
  t.same(names.filter((n) => n.startsWith('/') || n.split('/').some((s) => s === '' || s === '.' || s === '..')), [], 'plain relative paths')
  for (const name of REQUIRED) t.ok(names.includes(name), `ships ${name}`)
  for (const prefix of ['node_modules/', 'src/', 'test/', 'nginx/', 'bundle/', '.git/', 'coverage/']) {
    t.notOk(names.some((n) => n.startsWith(prefix)), `does not ship ${prefix}`)
  }
  t.same(names, [...names].sort(), 'entries in a stable order')
  t.ok(entries.every((e) => e.madeBy === 3 && e.mode === 0o100644), 'Unix regular files, mode 0644')

  const byName = new Map(entries.map((e) => [e.name, e.data]))
  t.equal(byName.get('Procfile')?.toString(), 'web: node --require ./dist/preload.cjs --enable-source-maps --initial-old-space-size=256 dist/server.js\n', 'starts the build, never builds at boot')
  for (const file of ['nginx.conf', 'conf.d/elasticbeanstalk/00_application.conf']) {
    t.same(byName.get(`.platform/nginx/${file}`), await readFile(join(REPO_ROOT, 'nginx', file)), `.platform/nginx/${file} is nginx/${file}`)
  }
  t.same(byName.get('package-lock.json'), await readFile(join(REPO_ROOT, 'package-lock.json')))

  t.test('nginx -t passes on the shipped config, beside the platform\'s enhanced-health files', async (t) => {
    const extracted = join(dir, 'extracted')
    for (const e of entries.filter((e) => e.name.startsWith('.platform/nginx/'))) {
      const path = join(extracted, e.name.slice('.platform/nginx/'.length))
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, e.data)
    }
    const alone = nginxCheck(await renderNginx(extracted, join(dir, 'alone'), { listenPort: 18080, upstreamPort: 18081 }))
    t.ok(alone.ok, `nginx -t on the shipped files${alone.ok ? '' : `: ${alone.output}`}`)
    const platform = join(dir, 'with-platform')
    const conf = await renderNginx(extracted, platform, { listenPort: 18080, upstreamPort: 18081 })
    for (const [file, text] of Object.entries(EB_PLATFORM_FILES)) await writeFile(join(platform, file), text)
    const withPlatform = nginxCheck(conf)
    t.ok(withPlatform.ok, `nginx -t with the platform's files${withPlatform.ok ? '' : `: ${withPlatform.output}`}`)
  })
})

t.test('the bundle refuses what would ship a broken deployment', async (t) => {
  const files = {
    Procfile: 'web: node dist/server.js\n',
    'package.json': '{}',
    'package-lock.json': '{}',
    dist: { 'server.js': '' },
    '.ebextensions': { 'a.config': '' },
    nginx: { 'nginx.conf': '' },
    models: { demo: { 'manifest.json': '{}' } }
  }
  const ok = t.testdir({ ...files, '.platform': { hooks: { prebuild: { 'x.sh': '' } } } })
  t.same((await bundleEntries(ok)).map((e) => e.name), [
    '.ebextensions/a.config', '.platform/hooks/prebuild/x.sh', '.platform/nginx/nginx.conf', 'Procfile',
    'dist/server.js', 'models/demo/manifest.json', 'package-lock.json', 'package.json'
  ], '.platform/ from the repo and nginx/ as .platform/nginx/')
  const { dist: _dist, ...noDist } = files
  await t.rejects(bundleEntries(t.testdir(noDist)), /dist is missing \(npm run build\)/)
  await t.rejects(bundleEntries(t.testdir({ ...files, models: {} })), /models.demo is missing \(npm run demo-model\)/)
  await t.rejects(bundleEntries(t.testdir({ ...files, '.platform': { nginx: { 'nginx.conf': '' } } })),
    /\.platform\/nginx\/ exists in the repository; nginx\/ is its only source/)
})
