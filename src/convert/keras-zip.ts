// The Keras 3 `.keras` zip: config.json, metadata.json, model.weights.h5 (README "Keras models").
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import yauzl from 'yauzl'
import { ConvertError } from './errors.js'

export interface KerasZip {
  config: string
  metadata: string | undefined
  /** model.weights.h5 written to a file (h5wasm reads files); the caller removes it. */
  weightsFile: string
}

const SMALL_ENTRY_BYTES = 64 * 2 ** 20
const MAX_WEIGHTS_BYTES = 16 * 2 ** 30

async function readSmall (zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  const stream = await zip.openReadStreamPromise(entry)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Reads a `.keras` file. Entry sizes are checked against what the zip declares while inflating
 * (yauzl's validateEntrySizes), so a zip bomb stops at its declared size, and declared sizes
 * themselves are capped.
 */
export async function readKerasZip (path: string, workDir: string, what: string): Promise<KerasZip> {
  let zip: yauzl.ZipFile
  try {
    zip = await yauzl.openPromise(path, { validateEntrySizes: true, strictFileNames: true, autoClose: false })
  } catch (err) {
    throw new ConvertError(`${what} is not a readable zip (${(err as Error).message})`)
  }
  const weightsFile = join(workDir, `model.weights.${process.pid}.${Date.now()}.h5`)
  let result: KerasZip
  try {
    const entries = new Map<string, yauzl.Entry>()
    for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry)
    const config = entries.get('config.json')
    const weights = entries.get('model.weights.h5')
    if (config === undefined || weights === undefined) {
      throw new ConvertError(`${what} is a zip but not a Keras .keras file (it needs config.json and model.weights.h5; it has ${[...entries.keys()].slice(0, 5).join(', ') || 'no files'})`)
    }
    for (const [entry, limit] of [[config, SMALL_ENTRY_BYTES], [weights, MAX_WEIGHTS_BYTES]] as const) {
      if (entry.uncompressedSize > limit) throw new ConvertError(`${what}: ${entry.fileName} declares ${entry.uncompressedSize} bytes, over the ${limit}-byte limit`)
    }
    const meta = entries.get('metadata.json')
    result = {
      config: await readSmall(zip, config),
      metadata: meta !== undefined && meta.uncompressedSize <= SMALL_ENTRY_BYTES ? await readSmall(zip, meta) : undefined,
      weightsFile
    }
    await pipeline(await zip.openReadStreamPromise(weights), createWriteStream(weightsFile, { flags: 'wx' }))
  } catch (err) {
    await rm(weightsFile, { force: true })
    if (err instanceof ConvertError) throw err
    throw new ConvertError(`${what}: the zip is damaged (${(err as Error).message})`)
  } finally {
    zip.close()
  }
  return result
}
