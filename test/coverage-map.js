// Coverage is measured on src/ only (scripts/ and test helpers are tools, not the product).
// src/server.ts counts through the spawned `node dist/server.js` tests (source maps lead back).
// src/inference/worker.ts runs in worker threads that the pool terminates, which loses their
// coverage; it is kept tiny on purpose (STYLE.md §12) and exercised by every pool test.
// src/convert/convert-worker.ts likewise runs in a one-shot worker thread (the conversion off the
// main thread); it only calls src/convert/convert.ts, which is counted.
// src/cli/** runs as spawned processes in its own tests.
import { readdirSync } from 'node:fs'

const NOT_COUNTED = [/^src\/inference\/worker\.ts$/, /^src\/convert\/convert-worker\.ts$/, /^src\/cli\//]

const files = readdirSync('src', { recursive: true })
  .map((f) => `src/${String(f).replaceAll('\\', '/')}`)
  .filter((f) => (f.endsWith('.ts') || f.endsWith('.cts')) && !NOT_COUNTED.some((re) => re.test(f)))

export default () => files
