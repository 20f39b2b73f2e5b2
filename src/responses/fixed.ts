import type { Prediction } from '../inference/postprocess.js'
import { percentOf, severityOf, type Severity } from './severity.js'

export interface FixedResult {
  primary_condition: string
  confidence: number
  percentage: number
  severity: Severity
  top_3_predictions: Array<{ condition: string, confidence: number, percentage: number }>
  all_predictions: Record<string, number>
}

/** The v5 fields from the predictions (every label, highest first): the top label and the top 3. */
export function toFixedResult (predictions: readonly Prediction[]): FixedResult {
  const top = predictions[0]!
  return {
    primary_condition: top.label,
    confidence: top.confidence,
    percentage: percentOf(top.confidence),
    severity: severityOf(top.confidence),
    top_3_predictions: predictions.slice(0, 3).map((p) => ({ condition: p.label, confidence: p.confidence, percentage: percentOf(p.confidence) })),
    all_predictions: Object.fromEntries(predictions.map((p) => [p.label, p.confidence]))
  }
}
