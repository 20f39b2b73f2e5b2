// Coverage is measured on src/ only (scripts/ and test helpers are tools, not the product).
// src/server.ts and src/cli/*.ts run as spawned `node dist/...` processes in the smoke tests,
// where tap cannot attribute coverage to the sources.
export default () => ['src/**/*.ts', '!src/server.ts', '!src/cli/**']
