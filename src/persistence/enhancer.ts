import type { Reducer, StoreEnhancer, UnknownAction } from '@reduxjs/toolkit'
import { ACTION_PREFIX, hydrateSlice, remoteApplied } from '../core/actions'
import type { PersistenceContext } from './instanceContext'
import { applyChanges, getAt, setAt } from './shapes'

/**
 * The store enhancer: wraps the root reducer so this instance's `hydrateSlice` replaces a slice's
 * collection and its `remoteApplied` applies puts and deletes to it. Actions of other instances
 * (their `meta.instanceId`) pass untouched.
 */
export function createEnhancer(ctx: PersistenceContext): StoreEnhancer {
  return (createStore) => (reducer, preloadedState) => {
    ctx.enhancerInstalled = true
    const wrapped = ((state: Record<string, unknown> | undefined, action: UnknownAction) => {
      const next = (reducer as Reducer)(state, action) as Record<string, unknown>
      if (typeof action.type !== 'string' || !action.type.startsWith(ACTION_PREFIX)) return next
      if (remoteApplied.match(action) && action.meta.instanceId === ctx.instanceId) {
        const s = ctx.slices.get(action.payload.slice)
        if (!s?.kind) return next
        const { puts, deletes } = action.payload
        const collection = applyChanges(s.kind, getAt(next[s.name], s.config.path), puts, deletes, s.config.getId)
        return { ...next, [s.name]: setAt(next[s.name], s.config.path, collection) }
      }
      if (!hydrateSlice.match(action) || action.meta.instanceId !== ctx.instanceId) return next
      const s = ctx.slices.get(action.payload.slice)
      if (!s) return next
      return { ...next, [s.name]: setAt(next[s.name], s.config.path, action.payload.collection) }
    }) as typeof reducer
    return createStore(wrapped, preloadedState)
  }
}
