import { InvalidOptionError } from '../errors'
import type { AutoSyncConfig, AutoSyncMiddleware } from './createAutoSyncMiddleware'

/** The most recently created live auto-sync instance (unless created with `default: false`). */
let current: AutoSyncMiddleware | null = null

export function setDefaultAutoSync(instance: AutoSyncMiddleware): void {
  current = instance
}

export function unsetDefaultAutoSync(instance: AutoSyncMiddleware): void {
  if (current === instance) current = null
}

/**
 * Changes the default auto-sync instance's settings (the most recently created live one).
 * Throws `InvalidOptionError` when there is none.
 *
 * @example
 * ```ts
 * configureAutoSync({ enabled: true, intervalMs: 30000, syncOnChange: true, maxQueueSize: 50 })
 * ```
 */
export function configureAutoSync(config: Partial<AutoSyncConfig>): void {
  if (!current) throw new InvalidOptionError('configureAutoSync', 'no auto-sync middleware has been created')
  current.configureAutoSync(config)
}
