import { FlushError, InvalidOptionError, isFlushError, toSyncError, type SyncError } from '../errors'
import { sharedSlot } from '../utils/sharedRegistry'
import type { RuntimeSliceConfig } from './options'

/** What the module-level functions need of an instance. */
export interface RegisteredInstance {
  flush(): Promise<void>
  configure(slice: string, config: RuntimeSliceConfig): void
  enable(slice: string): void
  disable(slice: string): void
  hasSlice(slice: string): boolean
  clear(): Promise<void>
}

/**
 * Every live (created and not disposed) persistence instance of this JavaScript realm, shared by
 * the ESM and CJS copies of the library (see sharedSlot). The module-level functions act on
 * these; instance methods act on one instance only.
 */
const live = sharedSlot('persistence.live', () => new Set<RegisteredInstance>())

export function addLiveInstance(instance: RegisteredInstance): void {
  live.add(instance)
}

export function removeLiveInstance(instance: RegisteredInstance): void {
  live.delete(instance)
}

function withSlice(slice: string): RegisteredInstance[] {
  const targets = [...live].filter((instance) => instance.hasSlice(slice))
  if (targets.length === 0) throw new InvalidOptionError('slice', `no live persistence instance persists a slice named "${slice}"`)
  return targets
}

/**
 * Flushes **every live instance** (each store's pending writes, whatever its `dbName`).
 * Resolves when all have committed; rejects with one `FlushError` listing every failure.
 *
 * @example
 * ```ts
 * async function saveProject() {
 *   await flushPersistence() // everything is in IndexedDB before continuing
 * }
 * ```
 */
export async function flushPersistence(): Promise<void> {
  const results = await Promise.allSettled([...live].map((instance) => instance.flush()))
  const errors: SyncError[] = []
  for (const result of results) {
    if (result.status === 'fulfilled') continue
    const reason: unknown = result.reason
    if (isFlushError(reason)) errors.push(...(reason.errors.length > 0 ? reason.errors : [reason]))
    else errors.push(toSyncError(reason, 'flush failed'))
  }
  if (errors.length > 0) throw new FlushError(errors)
}

/**
 * Changes a slice's runtime settings in **every live instance that persists a slice of that
 * name**. Throws `InvalidOptionError` if none does. With several stores, prefer the instance method.
 *
 * @example
 * ```ts
 * configurePersistence('files', { debounceMs: 500, syncToFlask: false })
 * ```
 */
export function configurePersistence(slice: string, config: RuntimeSliceConfig): void {
  for (const instance of withSlice(slice)) instance.configure(slice, config)
}

/** Enables a slice in every live instance that persists it. */
export function enablePersistence(slice: string): void {
  for (const instance of withSlice(slice)) instance.enable(slice)
}

/** Disables a slice in every live instance that persists it. Operations already queued are still written. */
export function disablePersistence(slice: string): void {
  for (const instance of withSlice(slice)) instance.disable(slice)
}

/**
 * Logout: clears **every live instance** — drops pending writes and outbox entries unsent,
 * disposes the instance and deletes its IndexedDB database (see `PersistenceMiddleware.clear`).
 * Rejects with one `FlushError` listing every failure (e.g. a `StorageBlockedError` when a
 * connection outside this library keeps the database open).
 *
 * @example
 * ```ts
 * async function logout() {
 *   await clearPersistence()
 *   window.location.assign('/login') // or reset the slices
 * }
 * ```
 */
export async function clearPersistence(): Promise<void> {
  const results = await Promise.allSettled([...live].map((instance) => instance.clear()))
  const errors = results.flatMap((result) => (result.status === 'rejected' ? [toSyncError(result.reason, 'clearing persistence failed')] : []))
  if (errors.length > 0) throw new FlushError(errors)
}
