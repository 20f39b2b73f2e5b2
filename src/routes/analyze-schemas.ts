import { Type } from 'typebox'
import { errorResponses } from '../schemas.js'

// Fastify serialises with these schemas: a field missing here is silently dropped from the answer.
const Prediction = Type.Object({ label: Type.String(), confidence: Type.Number() })
const Severity = Type.Enum(['low', 'medium', 'high'])
const Model = Type.Object({ name: Type.String(), version: Type.String(), demo: Type.Boolean() })

// Every analysis answer, whichever route's shape, starts with these (CLIENTS.md).
const Common = {
  success: Type.Literal(true),
  analysis_id: Type.String({ description: 'Unique per analysis.' }),
  timestamp: Type.String({ format: 'date-time', description: 'When the analysis finished (UTC).' }),
  requestId: Type.String()
}

export const AnalysisResponse = Type.Object({
  ...Common,
  model: Model,
  predictions: Type.Array(Prediction, { description: 'Every label, highest first.' }),
  top: Prediction,
  image: Type.Object({ width: Type.Integer(), height: Type.Integer(), format: Type.String() }, { description: 'After EXIF rotation.' }),
  timingsMs: Type.Object({ preprocess: Type.Number(), queue: Type.Number(), inference: Type.Number(), total: Type.Number() }),
  // What the team's results page reads: the predictions under its names.
  skin_analysis: Type.Object({
    skin_conditions: Type.Array(Type.Object({ type: Type.String(), confidence: Type.Number() })),
    total_conditions: Type.Integer(),
    ai_processed: Type.Literal(true),
    ai_level: Type.String({ description: '"<model name> <version>"' })
  })
})

export const HareRunResponse = Type.Object({
  ...Common,
  status: Type.Literal('success'),
  analysis_type: Type.Literal('skin_condition_classification'),
  model_info: Type.Object({
    name: Type.String(),
    version: Type.String(),
    demo: Type.Boolean(),
    classes: Type.Array(Type.String(), { description: 'The labels, in the model\'s output order.' }),
    declared_accuracy: Type.Optional(Type.Number({ description: 'As declared by the bundle\'s manifest.json; not measured by this server.' }))
  }),
  result: Type.Object({
    health_score: Type.Union([Type.Number(), Type.Null()], { description: '100 × P(healthy); null when the model has no "healthy" label.' }),
    primary_concerns: Type.Array(Type.String(), { description: 'Labels other than healthy with confidence ≥ 0.1, highest first.' }),
    severity_levels: Type.Record(Type.String(), Severity, { description: 'The severity of each primary concern.' }),
    conditions: Type.Record(Type.String(), Type.Object({ confidence: Type.Number(), severity: Severity }), { description: 'Every label.' })
  })
})

export const FixedResponse = Type.Object({
  ...Common,
  status: Type.Literal('success'),
  model: Model,
  primary_condition: Type.String(),
  confidence: Type.Number(),
  percentage: Type.Number(),
  severity: Severity,
  top_3_predictions: Type.Array(Type.Object({ condition: Type.String(), confidence: Type.Number(), percentage: Type.Number() })),
  all_predictions: Type.Record(Type.String(), Type.Number())
})

const Base64Image = Type.String({ description: 'The photo in base64 (standard or URL-safe, padding optional, line breaks allowed), or a data:image/…;base64, URL.' })

// For the OpenAPI document only: src/body reads the body as a stream (see the route).
export const AnalyzeBody = {
  content: {
    'multipart/form-data': {
      schema: Type.Object({
        image: Type.String({ format: 'binary', description: 'The photo (JPEG, PNG, WebP, AVIF or GIF; the first file part is used whatever its name).' }),
        ethnicity: Type.Optional(Type.String({ description: 'Accepted and ignored.' })),
        age: Type.Optional(Type.String({ description: 'Accepted and ignored.' })),
        race: Type.Optional(Type.String({ description: 'Accepted and ignored.' })),
        demographics: Type.Optional(Type.String({ description: 'Accepted and ignored.' }))
      })
    },
    'application/json': {
      schema: Type.Object({
        image: Type.Optional(Base64Image),
        image_data: Type.Optional(Type.String({ description: 'Same as image (the field their later clients used).' }))
      }, { description: 'One of image or image_data; other fields are ignored.' })
    },
    'application/octet-stream': { schema: Type.String({ format: 'binary', description: 'The photo\'s bytes (also image/*).' }) },
    'image/*': { schema: Type.String({ format: 'binary' }) }
  }
}

// For the OpenAPI document (headers are not validated: a missing or odd id just falls back to the address).
export const AnalyzeHeaders = Type.Object({
  'x-client-id': Type.Optional(Type.String({ description: 'A stable id of the client (user or device). With a canary model configured, it decides which model answers (a sticky share); without it the client\'s address does.' }))
})

export const analyzeErrors = errorResponses(['NO_IMAGE', 'BAD_REQUEST', 'REQUEST_TIMEOUT', 'PAYLOAD_TOO_LARGE', 'IMAGE_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE', 'UNDECODABLE_IMAGE', 'UNSUITABLE_IMAGE', 'RATE_LIMITED', 'NOT_READY', 'OVERLOADED', 'INFERENCE_TIMEOUT', 'INTERNAL'])
