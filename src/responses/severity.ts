export type Severity = 'low' | 'medium' | 'high'

// The team's own thresholds (their August backends): below 0.3 low, below 0.7 medium.
const BANDS: ReadonlyArray<[below: number, severity: Severity]> = [[0.3, 'low'], [0.7, 'medium']]

/** The severity their pages show for a confidence in 0..1. */
export function severityOf (confidence: number): Severity {
  return BANDS.find(([below]) => confidence < below)?.[1] ?? 'high'
}

/** A confidence as the percentage their pages print, one decimal. */
export const percentOf = (confidence: number) => Math.round(confidence * 1000) / 10
