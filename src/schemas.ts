import { Type } from 'typebox'

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
