import type { Action } from '@reduxjs/toolkit'
import { hydrateSlice, remoteApplied, resolveConflict, retryDeadLetter, rolledBack } from '../../core/actions'
import { syncActions } from './syncSlice'

/** What stands in for an item body in a sanitized action. */
export const OMITTED = '<item omitted>'

const conflictBodies = (conflict: { local: unknown; server: { value: unknown } | null }) => ({
  ...conflict,
  local: conflict.local === null ? null : OMITTED,
  server: conflict.server ? { ...conflict.server, value: conflict.server.value === null ? null : OMITTED } : null,
})

/**
 * An `actionSanitizer` for Redux DevTools: the library's actions keep their types, keys, ids,
 * counts, versions and reasons, and lose their item bodies (a hydration's collection, pulled
 * items, the rejected value of a rollback, both sides of a conflict), so the timeline stays
 * readable and private data stays out of the extension. Other actions pass unchanged. The
 * actions themselves are unchanged: only what DevTools records is.
 * @example
 * ```ts
 * configureStore({ reducer, devTools: { actionSanitizer: syncActionSanitizer } })
 * ```
 */
export function syncActionSanitizer<A extends Action>(action: A): A {
  if (hydrateSlice.match(action)) return { ...action, payload: { slice: action.payload.slice, count: action.payload.count, collection: OMITTED } }
  if (remoteApplied.match(action))
    return { ...action, payload: { slice: action.payload.slice, puts: action.payload.puts.map(([id]) => [id, OMITTED]), deletes: action.payload.deletes } }
  if (rolledBack.match(action)) {
    const { rejected, restored } = action.payload
    return {
      ...action,
      payload: {
        ...action.payload,
        rejected: { type: rejected.type, value: rejected.value === null ? null : OMITTED },
        restored: { version: restored.version, value: restored.value === null ? null : OMITTED },
      },
    }
  }
  if (syncActions.conflictChanged.match(action)) return { ...action, payload: conflictBodies(action.payload) }
  if (resolveConflict.match(action) && action.payload.resolution === 'merged') return { ...action, payload: { ...action.payload, value: OMITTED } }
  if (retryDeadLetter.match(action) && 'value' in action.payload) return { ...action, payload: { ...action.payload, value: OMITTED } }
  return action
}
