// Builds the Elastic Beanstalk source bundle: npm run bundle [-- --out bundle/shine-inference.zip]
//
// At the zip root, as the Node.js platform on Amazon Linux 2023 expects: Procfile (start without a
// build), package.json + package-lock.json (EB runs `npm install --production`), dist/ (compiled
// here from a clean slate, so no stale files ship), .ebextensions/, .platform/ and models/demo/.
// nginx/ is the one source of truth for the proxy: it ships as .platform/nginx/, generated here
// rather than kept twice by hand or symlinked (a Windows checkout turns symlinks into text files).
// Entry names always use "/" whatever the OS: a zip with "\" names broke the old service's deploys.
import { spawnSync } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import yazl from 'yazl'

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
export const DEFAULT_OUT = join(ROOT, 'bundle', 'shine-inference.zip')

/** Repository path (relative, OS separators) → where it lands in the zip. Folders are walked. */
const LAYOUT: Array<[source: string, target: string]> = [
  ['Procfile', 'Procfile'],
  ['package.json', 'package.json'],
  ['package-lock.json', 'package-lock.json'],
  ['dist', 'dist'],
  ['.ebextensions', '.ebextensions'],
  ['.platform', '.platform'],
  ['nginx', '.platform/nginx'],
  [join('models', 'demo'), 'models/demo']
]

// Editor and OS droppings never ship.
const JUNK = new Set(['.DS_Store', 'Thumbs.db', 'desktop.ini'])
// A fixed timestamp makes the zip a function of its contents only.
const MTIME = new Date(Date.UTC(2024, 0, 1))

export interface BundleEntry {
  /** Path inside the zip, always with "/". */
  name: string
  /** File on disk. */
  source: string
}

async function walk (path: string): Promise<string[]> {
  const info = await stat(path)
  if (!info.isDirectory()) return [path]
  const names = (await readdir(path)).filter((n) => !JUNK.has(n)).sort()
  return (await Promise.all(names.map(async (n) => await walk(join(path, n))))).flat()
}

/** Everything the bundle holds, sorted by name. Throws when something EB needs is missing. */
export async function bundleEntries (root = ROOT): Promise<BundleEntry[]> {
  if (await stat(join(root, '.platform', 'nginx')).then(() => true, () => false)) {
    throw new Error('bundle: .platform/nginx/ exists in the repository; nginx/ is its only source, delete the copy')
  }
  const entries: BundleEntry[] = []
  for (const [source, target] of LAYOUT) {
    const path = join(root, source)
    const exists = await stat(path).then(() => true, () => false)
    if (!exists) {
      if (source === '.platform') continue // only nginx/ so far; hooks would live here
      throw new Error(`bundle: ${source} is missing${source === 'dist' ? ' (npm run build)' : source.startsWith('models') ? ' (npm run demo-model)' : ''}`)
    }
    for (const file of await walk(path)) {
      const rel = relative(path, file).split(sep).join('/')
      entries.push({ name: rel === '' ? target : `${target}/${rel}`, source: file })
    }
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : 1))
}

export async function writeZip (entries: BundleEntry[], out: string): Promise<void> {
  await mkdir(dirname(out), { recursive: true })
  const zip = new yazl.ZipFile()
  for (const e of entries) zip.addFile(e.source, e.name, { mtime: MTIME, mode: 0o100644 })
  const done = new Promise<void>((resolve, reject) => {
    const file = createWriteStream(out)
    file.once('close', resolve)
    file.once('error', reject)
    zip.outputStream.once('error', reject)
    zip.outputStream.pipe(file)
  })
  zip.end()
  await done
}

/** `tsc -p tsconfig.build.json` into an emptied dist/. */
export async function cleanBuild (root = ROOT): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  await rm(join(root, 'dist'), { recursive: true, force: true })
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('bundle: tsc failed')
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: DEFAULT_OUT },
      // Ship the dist/ already built (tests, which run after `npm run build`, use this).
      'skip-build': { type: 'boolean', default: false }
    }
  })
  if (values['skip-build'] !== true) await cleanBuild()
  const entries = await bundleEntries()
  const out = resolve(values.out)
  await writeZip(entries, out)
  const bytes = (await stat(out)).size
  process.stdout.write(`${out}: ${entries.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
