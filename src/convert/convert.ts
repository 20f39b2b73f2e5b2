// Keras (.h5, .keras) and TF.js layers models → ONNX, in process (README "Keras models").
import { rm } from 'node:fs/promises'
import { ConvertError } from './errors.js'
import { foldBatchNorm } from './fold.js'
import { attr, isGroup, openHdf5 } from './hdf5.js'
import { parseModelConfig, type KerasGraph } from './keras-model.js'
import { kerasV3Weights, legacyWeights } from './keras-weights.js'
import { readKerasZip } from './keras-zip.js'
import { OnnxGraph, type GraphIO } from './onnx-graph.js'
import { readTfjs } from './tfjs.js'
import { GraphWalker } from './walk.js'
import type { WeightSource } from './weights.js'
import type { ModelFormat } from './detect.js'

/** Part of the cache key of a converted model: bump it whenever the emitted graph can change. */
export const CONVERTER_VERSION = 'shine-keras-onnx/1'

export type KerasFormat = Exclude<ModelFormat, 'onnx'>

export interface ConvertSummary {
  format: KerasFormat
  modelName: string
  kerasVersion: string
  inputs: GraphIO[]
  outputs: GraphIO[]
  /** Keras layers converted, by class. */
  layers: Record<string, number>
  parameters: number
  /** ONNX nodes emitted, by op type. */
  onnxOps: Record<string, number>
  ms: number
}

export interface Converted {
  /** The ONNX file in pieces (OnnxGraph.encodeParts): writeOnnx writes them. */
  parts: Uint8Array[]
  summary: ConvertSummary
}

interface Loaded {
  graph: KerasGraph
  weights: WeightSource
  kerasVersion: string
  cleanup: () => Promise<void>
}

function parseJson (text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ConvertError(`${what} is not valid JSON (${(err as Error).message})`)
  }
}

async function loadH5 (path: string, what: string): Promise<Loaded> {
  const file = await openHdf5(path, what)
  try {
    const config = attr(file, 'model_config')
    if (typeof config !== 'string') throw new ConvertError(`${what} has no model_config: it holds only weights`)
    const version = attr(file, 'keras_version')
    const kerasVersion = typeof version === 'string' ? version : 'unknown'
    const graph = parseModelConfig(parseJson(config, `${what}'s model_config`), kerasMajor(kerasVersion))
    const root = file.get('model_weights')
    const weights = legacyWeights(isGroup(root) ? root : file, what)
    return { graph, weights, kerasVersion, cleanup: async () => { file.close() } }
  } catch (err) {
    file.close()
    throw err
  }
}

async function loadKeras (path: string, workDir: string, what: string): Promise<Loaded> {
  const zip = await readKerasZip(path, workDir, what)
  try {
    const meta = zip.metadata === undefined ? {} : parseJson(zip.metadata, `${what}'s metadata.json`) as Record<string, unknown>
    const graph = parseModelConfig(parseJson(zip.config, `${what}'s config.json`), 3)
    const file = await openHdf5(zip.weightsFile, `${what}'s model.weights.h5`)
    return {
      graph,
      weights: kerasV3Weights(file, what),
      kerasVersion: typeof meta.keras_version === 'string' ? meta.keras_version : '3',
      cleanup: async () => {
        file.close()
        await rm(zip.weightsFile, { force: true })
      }
    }
  } catch (err) {
    await rm(zip.weightsFile, { force: true })
    throw err
  }
}

async function loadTfjs (path: string, what: string): Promise<Loaded> {
  const model = await readTfjs(path, what)
  return { graph: parseModelConfig(model.topology, kerasMajor(model.kerasVersion)), weights: model.weights, kerasVersion: model.kerasVersion, cleanup: async () => {} }
}

/** "2.13.1" → 2; TF.js layers ("tfjs-layers 4.x") follow Keras 2's built-ins. */
export function kerasMajor (version: string): number {
  const m = /^(\d+)\./.exec(version)
  return m === null ? 2 : Number(m[1])
}

/**
 * Converts one model file. `workDir` receives temporary files (a `.keras` file's weights) and is
 * left as it was found.
 */
export async function convertKerasFile (path: string, format: KerasFormat, workDir: string, what = path): Promise<Converted> {
  const started = performance.now()
  const loaded = format === 'keras-h5'
    ? await loadH5(path, what)
    : format === 'keras' ? await loadKeras(path, workDir, what) : await loadTfjs(path, what)
  try {
    const g = new OnnxGraph()
    const walker = new GraphWalker(g, loaded.weights, kerasMajor(loaded.kerasVersion))
    const result = walker.walkTop(loaded.graph)
    foldBatchNorm(g)
    const parts = g.encodeParts({
      name: loaded.graph.name,
      inputs: result.inputs,
      outputs: result.outputs,
      docString: `converted from ${format} (Keras ${loaded.kerasVersion}) by ${CONVERTER_VERSION}`,
      producerVersion: CONVERTER_VERSION
    })
    return {
      parts,
      summary: {
        format,
        modelName: loaded.graph.name,
        kerasVersion: loaded.kerasVersion,
        inputs: result.inputs,
        outputs: result.outputs.map(({ name, dims }) => ({ name, dims })),
        layers: result.layerCounts,
        parameters: result.parameters,
        onnxOps: g.opCounts(),
        ms: performance.now() - started
      }
    }
  } finally {
    await loaded.cleanup()
  }
}

