import cors from '@fastify/cors'
import fp from 'fastify-plugin'

export interface CorsOptions {
  origins: '*' | readonly string[]
  maxAgeS: number
}

// What the team's clients sent (CLIENTS.md), plus our request id and the canary's client id.
export const ALLOWED_HEADERS = ['Content-Type', 'Authorization', 'X-Requested-With', 'Accept', 'Origin', 'Cache-Control', 'X-Request-Id', 'X-Client-Id']
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'OPTIONS']

// The one place CORS headers are written (nginx adds none): their outages were a second
// Access-Control-Allow-Origin from a hand-written hook. Registered before every hook that can
// refuse a request (draining, rate limit, admission), so error answers carry it too.
export default fp<CorsOptions>(async (app, { origins, maxAgeS }) => {
  await app.register(cors, {
    // A function, so that @fastify/cors always adds Vary: Origin (also for "*": a cache in front
    // then never serves one origin's answer to another whatever the setting becomes).
    origin: (_origin, done) => done(null, origins === '*' ? '*' : [...origins]),
    methods: ALLOWED_METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: maxAgeS,
    // No cookies are used: never Allow-Credentials (with "*" browsers refuse it anyway).
    credentials: false,
    strictPreflight: false
  })
}, { name: 'cors' })
