// Loaded before the entry (`node --require ./dist/preload.cjs dist/server.js`): libuv sizes its
// thread pool on first use, and under ESM that happens while the entry's imports are read, before
// any of our code runs, so setting UV_THREADPOOL_SIZE in server.ts would be too late.
// CommonJS with require() only, since a .cts file may not use import/export syntax here.
{
  const { availableParallelism } = require('node:os') as typeof import('node:os')
  const { uvThreadpoolSize } = require('./thread-budget.js') as typeof import('./thread-budget.js', { with: { 'resolution-mode': 'import' } })
  // A value set by hand wins (README "Threads"); an empty one counts as unset.
  process.env.UV_THREADPOOL_SIZE ||= String(uvThreadpoolSize(availableParallelism()))
}
