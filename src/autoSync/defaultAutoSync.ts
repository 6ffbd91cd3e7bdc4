import { InvalidOptionError } from '../errors'
import { sharedSlot } from '../utils/sharedRegistry'
import type { AutoSyncMiddleware } from './createAutoSyncMiddleware'
import type { AutoSyncConfig } from './options'

// `@__PURE__`: an app that never uses auto-sync does not bundle this slot.
/**
 * The most recently created live auto-sync instance (unless created with `default: false`),
 * shared by the ESM and CJS copies of the library (see sharedSlot).
 */
const registry = /* @__PURE__ */ sharedSlot('autoSync.default', () => ({ current: null as AutoSyncMiddleware | null }))

export function setDefaultAutoSync(instance: AutoSyncMiddleware): void {
  registry.current = instance
}

export function unsetDefaultAutoSync(instance: AutoSyncMiddleware): void {
  if (registry.current === instance) registry.current = null
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
  const { current } = registry
  if (!current) throw new InvalidOptionError('configureAutoSync', 'no auto-sync middleware has been created')
  current.configureAutoSync(config)
}
