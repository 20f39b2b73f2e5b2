// HDF5 access through h5wasm (HDF5's own C library compiled to WebAssembly; README "Keras models").
import { open } from 'node:fs/promises'
import h5wasm from 'h5wasm/node'
import { ConvertError } from './errors.js'

export const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])

export type H5File = InstanceType<typeof h5wasm.File>
export type H5Group = InstanceType<typeof h5wasm.Group>
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>

/**
 * The end-of-file address the superblock records (versions 0–3), so a truncated download is named
 * as such before HDF5 reads past the end (and writes its diagnostics to stderr).
 */
export function superblockEof (head: Buffer): bigint | undefined {
  if (!head.subarray(0, 8).equals(HDF5_SIGNATURE)) return undefined
  const version = head[8]
  if (version === 0 || version === 1) {
    const offsets = head[13] as number
    const base = 24 + (version === 1 ? 4 : 0)
    return readAddress(head, base + 2 * offsets, offsets)
  }
  if (version === 2 || version === 3) {
    const offsets = head[9] as number
    return readAddress(head, 12 + 2 * offsets, offsets)
  }
  return undefined
}

function readAddress (head: Buffer, at: number, size: number): bigint | undefined {
  if (size !== 8 && size !== 4) return undefined
  if (head.length < at + size) return undefined
  return size === 8 ? head.readBigUInt64LE(at) : BigInt(head.readUInt32LE(at))
}

async function checkComplete (path: string, what: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    const head = Buffer.alloc(96)
    await handle.read(head, 0, head.length, 0)
    if (!head.subarray(0, 8).equals(HDF5_SIGNATURE)) throw new ConvertError(`${what} is not an HDF5 file`)
    const eof = superblockEof(head)
    if (eof !== undefined && eof > BigInt(size)) {
      throw new ConvertError(`${what} is truncated: the HDF5 header records ${eof} bytes but the file has ${size}`)
    }
  } finally {
    await handle.close()
  }
}

/** Opens an HDF5 file read-only; a damaged file is a ConvertError naming it. */
export async function openHdf5 (path: string, what: string): Promise<H5File> {
  await checkComplete(path, what)
  await h5wasm.ready
  try {
    const file = new h5wasm.File(path, 'r')
    file.keys()
    return file
  } catch (err) {
    throw new ConvertError(`${what} could not be read as HDF5 (${(err as Error).message})`)
  }
}

export function attr (node: { attrs: Record<string, { value: unknown }> }, name: string): unknown {
  return node.attrs[name]?.value
}

export function isGroup (e: unknown): e is H5Group {
  return e instanceof h5wasm.Group
}

export function isDataset (e: unknown): e is H5Dataset {
  return e instanceof h5wasm.Dataset
}
