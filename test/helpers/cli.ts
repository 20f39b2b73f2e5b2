// Runs the built `shine-models` (`node dist/cli/models.js`) as users do, with only the given environment.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../dist/cli/models.js', import.meta.url))

export interface CliRun { code: number | null, stdout: string, stderr: string }

export async function runCli (args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  if (!existsSync(CLI)) throw new Error('dist/cli/models.js is missing: run `npm run build` (npm test does)')
  // NODE_NO_WARNINGS: the SDK warns on Node 20 about its future support window.
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await new Promise<[number | null]>((resolve) => child.once('close', (c) => resolve([c])))
  return { code, stdout, stderr }
}
