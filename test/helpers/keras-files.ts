// Damaged and edited copies of the Keras fixtures, made in a test's own folder.
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import h5wasm from 'h5wasm/node'

/** A copy of an HDF5 Keras file whose model_config went through `edit`. */
export async function withEditedConfig (source: string, dir: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
  const dest = join(dir, `edited-${Math.random().toString(36).slice(2)}.h5`)
  copyFileSync(source, dest)
  await h5wasm.ready
  const file = new h5wasm.File(dest, 'a')
  try {
    const config = JSON.parse(String(file.attrs.model_config?.value)) as Record<string, unknown>
    edit(config)
    file.delete_attribute('model_config')
    file.create_attribute('model_config', JSON.stringify(config))
  } finally {
    file.close()
  }
  return dest
}

interface LayerJson { class_name: string, name?: string, config: Record<string, unknown> }

/** The layers list of a Functional config (the top-level model's own). */
export function layersOf (config: Record<string, unknown>): LayerJson[] {
  return (config.config as { layers: LayerJson[] }).layers
}
