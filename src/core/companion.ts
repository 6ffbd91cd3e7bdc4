import { isAction, type Middleware, type UnknownAction } from '@reduxjs/toolkit'
import { getPersistenceInstance } from './actions'
import type { PersistenceInstancePort } from './ports'

/**
 * Builds the middleware of a companion (the monitor, auto-sync): it finds the store's
 * persistence instance through the store itself, by dispatching `getPersistenceInstance`, which
 * the persistence middleware answers. Dispatching while middleware is being built is not
 * allowed, so the look-up happens in a microtask, or on the first action if that comes sooner.
 * Companions thus share the instance's queue and outbox, never a copy.
 */
export function companionMiddleware<T extends PersistenceInstancePort = PersistenceInstancePort>(
  onFound: (persistence: T) => void,
  isDisposed: () => boolean,
): Middleware {
  return ((api: { dispatch(action: UnknownAction): unknown }) => {
    let looked = false
    const lookUp = (): void => {
      if (looked || isDisposed()) return
      looked = true
      const found = api.dispatch(getPersistenceInstance()) as Partial<T> | undefined
      if (found && typeof found.subscribeEvents === 'function') onFound(found as T)
    }
    queueMicrotask(lookUp)
    return (next: (action: unknown) => unknown) => (action: unknown) => {
      if (!looked && isAction(action) && !getPersistenceInstance.match(action)) lookUp()
      return next(action)
    }
  }) as Middleware
}
