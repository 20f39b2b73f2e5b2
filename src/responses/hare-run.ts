import type { Prediction } from '../inference/postprocess.js'
import { percentOf, severityOf, type Severity } from './severity.js'

/** The label whose probability is the health score, when the model has it (the team's models do). */
export const HEALTHY_LABEL = 'healthy'
/** A label other than healthy is a concern from this confidence on. */
export const CONCERN_THRESHOLD = 0.1

export interface HareRunResult {
  /** 100 × P(healthy), one decimal; null when the model has no "healthy" label. */
  health_score: number | null
  primary_concerns: string[]
  severity_levels: Record<string, Severity>
  conditions: Record<string, { confidence: number, severity: Severity }>
}

export interface ModelFacts {
  name: string
  version: string
  demo: boolean
  labels: readonly string[]
  /** Only when the bundle's manifest declares one; never measured here. */
  accuracy?: number | undefined
}

/** `model_info` of the v6 route: what the bundle says about itself, nothing computed. */
export function toModelInfo (model: ModelFacts) {
  return {
    name: model.name,
    version: model.version,
    demo: model.demo,
    classes: [...model.labels],
    ...(model.accuracy === undefined ? {} : { declared_accuracy: model.accuracy })
  }
}

/**
 * The v6 `result` from the predictions (every label, highest first), by the rules in the README:
 * concerns are the labels other than healthy at or above CONCERN_THRESHOLD, highest first, and
 * `severity_levels` gives each concern's severity; `conditions` covers every label.
 */
export function toHareRunResult (predictions: readonly Prediction[]): HareRunResult {
  const healthy = predictions.find((p) => p.label === HEALTHY_LABEL)
  const concerns = predictions.filter((p) => p.label !== HEALTHY_LABEL && p.confidence >= CONCERN_THRESHOLD)
  return {
    health_score: healthy === undefined ? null : percentOf(healthy.confidence),
    primary_concerns: concerns.map((p) => p.label),
    severity_levels: Object.fromEntries(concerns.map((p) => [p.label, severityOf(p.confidence)])),
    conditions: Object.fromEntries(predictions.map((p) => [p.label, { confidence: p.confidence, severity: severityOf(p.confidence) }]))
  }
}
