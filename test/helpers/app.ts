// A ready app on a real tiny model and a real worker pool, as server.ts would build it.
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { startEngine } from '../../src/inference/engine.js'
import { localStore } from '../../src/models/store.js'
import { Readiness } from '../../src/readiness.js'
import { writeTinyBundle, type TinyBundleOptions } from './model.js'

export interface TestAppOptions {
  env?: Record<string, string>
  bundle?: TinyBundleOptions
  /** Serve this model path instead of writing a tiny bundle. */
  modelPath?: string
  /** Leave the readiness at 'starting' (no model loaded). */
  notReady?: boolean
  /** Build the pool with test hooks (crashForTest). */
  testHooks?: boolean
}

export async function testApp (t: Test, o: TestAppOptions = {}) {
  const modelPath = o.modelPath ?? (await writeTinyBundle(t.testdir(), o.bundle)).dir
  const config: Config = loadConfig({ WORKERS: '2', LOG_LEVEL: 'silent', MODEL_PATH: modelPath, ...o.env })
  const readiness = new Readiness()
  const app = buildApp({ config, readiness })
  t.teardown(async () => await app.close())
  if (o.notReady !== true) {
    const engine = await startEngine(await localStore(config.modelPath, config.modelDir).resolve(), { ...config, testHooks: o.testHooks }, (p) => readiness.trackPool(p))
    readiness.ready(engine)
  }
  return { app, readiness, config }
}

/** A multipart body with one file part (web FormData, as browsers send it). */
export function form (bytes: Uint8Array, field = 'image', filename = 'photo.jpg', type = 'image/jpeg'): FormData {
  const fd = new FormData()
  fd.append(field, new Blob([bytes], { type }), filename)
  return fd
}
