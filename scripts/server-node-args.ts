// The node flags the server runs with in production, read from the Procfile (the Dockerfile's CMD
// is checked against it in test/deploy/dockerfile.test.ts), so tests and benches start the server
// exactly as Elastic Beanstalk and the image do.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export function serverNodeArgs (root: string): string[] {
  const line = readFileSync(join(root, 'Procfile'), 'utf8').trim()
  const m = /^web: node (.*) dist\/server\.js$/.exec(line)
  if (m === null) throw new Error(`Procfile: expected "web: node <flags> dist/server.js", found "${line}"`)
  // Relative paths in the flags (./dist/preload.cjs) are resolved against the repository.
  return m[1]!.split(' ').map((arg) => arg.startsWith('./') ? join(root, arg) : arg)
}
