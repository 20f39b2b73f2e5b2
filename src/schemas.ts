import { Type } from 'typebox'
import { ERRORS, type ErrorCode } from './errors.js'

// Response schemas are the contract (DESIGN.md) and let fast-json-stringify serialise them.
export const ErrorResponse = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String() }),
  /** Repeats error.message, for the team's older pages. */
  message: Type.String(),
  requestId: Type.String()
})

export const ModelInfo = Type.Object({
  name: Type.String(),
  version: Type.String(),
  format: Type.String(),
  source: Type.String(),
  demo: Type.Boolean(),
  sourceError: Type.Optional(Type.String()),
  warnings: Type.Array(Type.String()),
  /** The labels the model answers with, in output order. */
  labels: Type.Optional(Type.Array(Type.String())),
  /** A newer version being prepared, or refused (with why) while this one keeps serving. */
  pending: Type.Optional(Type.Object({ version: Type.String(), error: Type.Optional(Type.String()) }))
})

/** Response schemas for these error codes, one per status, each saying which codes it carries. */
export function errorResponses (codes: readonly ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of codes) byStatus.set(ERRORS[code].status, [...byStatus.get(ERRORS[code].status) ?? [], code])
  return Object.fromEntries([...byStatus].map(([status, list]) =>
    [status, { ...ErrorResponse, description: list.map((c) => `${c}: ${ERRORS[c].message}`).join(' / ') }]))
}
