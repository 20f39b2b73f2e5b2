import t from 'tap'
import { NODE_UV_THREADPOOL, libuvPoolSize, threadBudget, uvThreadpoolSize } from '../src/thread-budget.js'

t.test('the libuv pool gets a thread per core, never fewer than Node\'s 4', async (t) => {
  t.equal(uvThreadpoolSize(1), NODE_UV_THREADPOOL)
  t.equal(uvThreadpoolSize(4), 4)
  t.equal(uvThreadpoolSize(8), 8, 'an m5.2xlarge decodes 8 photos at a time')
  t.equal(uvThreadpoolSize(48), 48)
})

t.test('on an m5.2xlarge started by the Procfile: a worker and a decode per core, no warning', async (t) => {
  t.same(threadBudget({ cores: 8, backgroundNice: 10, uvThreadpoolEnv: String(uvThreadpoolSize(8)) }),
    { cores: 8, workers: 8, intraOpThreads: 1, uvThreadpool: 8, decodeThreads: 1, backgroundNice: 10, warnings: [] })
  t.equal(threadBudget({ cores: 8 }).backgroundNice, 0, 'unset: every thread at the same priority')
})

t.test('every way the budget can leave cores idle or oversubscribe them is said', async (t) => {
  const warnings = (settings: Parameters<typeof threadBudget>[0]) => threadBudget(settings).warnings
  t.match(warnings({ cores: 8 }), [/UV_THREADPOOL_SIZE was not set at start .*preload\.cjs.*at most 4 photos/], 'started without the preload')
  t.match(warnings({ cores: 8, workers: 4, uvThreadpoolEnv: '8' }), [/= 4 threads of inference on 8 cores: 4 cores never run inference/])
  t.match(warnings({ cores: 2, workers: 2, intraOpThreads: 2, uvThreadpoolEnv: '4' }), [/= 4 threads of inference on 2 cores: they take turns/])
  t.match(warnings({ cores: 8, uvThreadpoolEnv: '2' }), [/UV_THREADPOOL_SIZE=2 decodes fewer photos at a time than the 8 cores/])
  t.same(warnings({ cores: 1, workers: 1, uvThreadpoolEnv: '4' }), [])
  t.same(warnings({ cores: 8, workers: 2, intraOpThreads: 4, uvThreadpoolEnv: '8' }), [], '2 × 4 threads fill 8 cores too')
})

t.test('UV_THREADPOOL_SIZE is read as libuv reads it', async (t) => {
  t.equal(libuvPoolSize('16'), 16)
  t.equal(libuvPoolSize('12 threads'), 12, 'atoi stops at the first non-digit')
  t.equal(libuvPoolSize('many'), 1, 'not a number: atoi gives 0, libuv makes it 1')
  t.equal(libuvPoolSize('0'), 1)
  t.equal(libuvPoolSize('5000'), 1024, 'capped')
  t.equal(libuvPoolSize('-3'), 1024, 'unsigned: a negative wraps and is capped')
  t.equal(threadBudget({ cores: 8, uvThreadpoolEnv: 'many' }).uvThreadpool, 1)
})
