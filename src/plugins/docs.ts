import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

export interface DocsOptions {
  version: string
}

// OpenAPI from the route schemas (registered before the routes: it collects them as they are
// added), served at /openapi.json, and Swagger UI at /docs to try the API with a photo.
export default fp<DocsOptions>(async (app, { version }) => {
  await app.register(swagger, {
    openapi: {
      // 3.1: the schemas are JSON Schema as TypeBox writes it (e.g. a nullable health_score).
      openapi: '3.1.0',
      info: {
        title: 'shine-inference',
        version,
        description: 'A skin photo in, a skin analysis out. The photo goes as multipart/form-data, as base64 JSON or as a raw image body (README "Request forms").'
      }
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // The UI's assets are served from here; helmet's CSP (script-src 'self') allows them.
    // No online validator badge: it would load an image from validator.swagger.io.
    uiConfig: { validatorUrl: null, tryItOutEnabled: true, deepLinking: true },
    staticCSP: false
  })
  app.get('/openapi.json', {
    schema: { summary: 'This API\'s OpenAPI 3.1 document', response: { 200: { type: 'object', additionalProperties: true } } },
    logLevel: 'warn'
  }, async () => app.swagger())
}, { name: 'docs' })
