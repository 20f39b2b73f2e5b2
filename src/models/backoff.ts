import { setTimeout as sleep } from 'node:timers/promises'

export interface RetryPolicy {
  /** Attempts per request before giving up; an attempt that received bytes does not use one up. */
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
}

/**
 * Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a fleet booting together spreads its retries, and no retry comes at once.
 * `attempt` counts the failures so far (1 = the first retry).
 */
export function backoffDelay (attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

export { sleep }

/** Runs `fn` until it succeeds, fails with an error `isRetryable` rejects, or runs out of attempts. */
export async function retrying<T> (
  fn: () => Promise<T>,
  policy: RetryPolicy,
  isRetryable: (err: unknown) => boolean,
  onRetry?: (attempt: number, delayMs: number, err: unknown) => void,
  attempt = 1
): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (attempt >= policy.maxAttempts || !isRetryable(err)) throw err
    const delayMs = backoffDelay(attempt, policy.baseDelayMs, policy.maxDelayMs)
    onRetry?.(attempt, delayMs, err)
    await sleep(delayMs)
    return await retrying(fn, policy, isRetryable, onRetry, attempt + 1)
  }
}
