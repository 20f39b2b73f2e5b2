// Labels for a model published without manifest.json: a JSON file beside it (README "Keras models").
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ManifestError, type SideLabels } from './manifest.js'

/**
 * Looked for in this order beside the model (and in S3 beside the key): the team's training
 * script writes `facial_results.json` with `class_names`; the others are common spellings.
 * Only these names are tried, so a bucket listing is never needed.
 */
export const SIDE_LABEL_FILES = ['facial_results.json', 'labels.json', 'class_names.json'] as const

const MAX_LABEL_FILE_BYTES = 8 * 2 ** 20

const isLabelList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.length > 0 && v.every((l) => typeof l === 'string' && l.length > 0 && l.length <= 200)

/** `{"class_names": [...]}`, `{"labels": [...]}` or a bare list; anything else names what is wrong. */
export function parseLabelFile (text: string, file: string): string[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ManifestError(`${file} is not JSON: ${(err as Error).message}`)
  }
  const obj = (typeof json === 'object' && json !== null && !Array.isArray(json) ? json : {}) as Record<string, unknown>
  const labels = Array.isArray(json) ? json : obj.class_names ?? obj.labels
  if (!isLabelList(labels)) {
    throw new ManifestError(`${file} has no usable labels: it needs "class_names" or "labels", a list of non-empty strings`)
  }
  if (new Set(labels).size !== labels.length) throw new ManifestError(`${file}: labels must be unique`)
  return labels
}

/** The first side label file present in `dir`, parsed; undefined when there is none. */
export async function readSideLabels (dir: string, names: readonly string[] = SIDE_LABEL_FILES): Promise<SideLabels | undefined> {
  for (const file of names) {
    const text = await readFile(join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw new ManifestError(`${join(dir, file)}: ${err.message}`)
    })
    if (text === undefined) continue
    if (text.length > MAX_LABEL_FILE_BYTES) throw new ManifestError(`${file} is over ${MAX_LABEL_FILE_BYTES} bytes; a label file is far smaller`)
    return { file, labels: parseLabelFile(text, file) }
  }
  return undefined
}
