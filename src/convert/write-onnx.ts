// Writes a converted model's pieces (OnnxGraph.encodeParts) to one file, hashing as it goes.
import { createHash } from 'node:crypto'
import { open, rm, writeFile } from 'node:fs/promises'

export interface Written {
  sha256: string
  bytes: number
}

/** Writes `parts` to a new file at `path`, fsynced; a failed write leaves no file behind. */
export async function writeOnnx (parts: readonly Uint8Array[], path: string): Promise<Written> {
  const hash = createHash('sha256')
  let bytes = 0
  // writeFile, not write(): it retries a short write until each part is all on disk.
  function * hashed (): Generator<Uint8Array> {
    for (const part of parts) {
      hash.update(part)
      bytes += part.length
      yield part
    }
  }
  const handle = await open(path, 'wx')
  try {
    await writeFile(handle, hashed())
    await handle.sync()
  } catch (err) {
    await handle.close()
    await rm(path, { force: true })
    throw err
  }
  await handle.close()
  return { sha256: hash.digest('hex'), bytes }
}
