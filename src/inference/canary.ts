// Which analyses go to the canary model: a stable share of clients, not of requests, so one
// user keeps seeing one model across visits and instances (every instance hashes alike).
import { createHash } from 'node:crypto'

/**
 * Where `clientKey` falls in [0, 100): the first 32 bits of its SHA-256, scaled. SHA-256 rather
 * than a short hash: ids like "user-1", "user-2" must spread evenly, and it costs ~1 µs.
 */
export function canaryShare (clientKey: string): number {
  return createHash('sha256').update(clientKey).digest().readUInt32BE(0) / 2 ** 32 * 100
}

/** True when this client is in the canary's `percent` (0–100) of clients. */
export function inCanary (clientKey: string, percent: number): boolean {
  return percent > 0 && canaryShare(clientKey) < percent
}

/** The X-Client-Id header when the client sends one (first value, trimmed), else its IP. */
export function clientKey (clientId: string | string[] | undefined, ip: string): string {
  const id = (Array.isArray(clientId) ? clientId[0] : clientId)?.trim()
  return id === undefined || id === '' ? `ip:${ip}` : `id:${id}`
}
