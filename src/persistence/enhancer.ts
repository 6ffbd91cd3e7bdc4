import type { Reducer, StoreEnhancer, UnknownAction } from '@reduxjs/toolkit'
import { ACTION_PREFIX, hydrateSlice, remoteApplied } from '../core/actions'
import type { PersistenceContext, SliceRuntime } from './instanceContext'
import { applyChanges, getAt, setAt } from './shapes'
import { notePatches, patchesAvailable, producePatches, trackable } from './sliceTracker'

type State = Record<string, unknown>

/** How the enhancer reduces an action type it has seen: with drafts (patch tracking), or never so. */
const DRAFT = 1
const NEVER = 2
/** Thrown inside the draft recipe to abandon it: the reducer replaced a persisted slice. */
const REDUCE_PLAIN = Symbol('reduce without drafts')

/**
 * The store enhancer: wraps the root reducer so this instance's `hydrateSlice` replaces a slice's
 * collection and its `remoteApplied` applies puts and deletes to it. Actions of other instances
 * (their `meta.instanceId`) pass untouched.
 *
 * It also tracks which items each action changed (the `track` slice option): an action type
 * already seen to change a persisted slice is reduced with the persisted slices as drafts inside
 * one `produceWithPatches`, and the ids are read from the patches. Every other reduction only
 * notes which slices changed, and their next diff is a full one.
 */
export function createEnhancer(ctx: PersistenceContext): StoreEnhancer {
  return (createStore) => (reducer, preloadedState) => {
    ctx.enhancerInstalled = true
    const root = reducer as Reducer
    const modes = new Map<string, number>()
    const tracking = patchesAvailable()
    /** Dispatches under way: above 1, a store listener dispatched while another dispatch notifies. */
    let depth = 0

    /** After a reduction the patches did not describe: each slice that changed is diffed in full. */
    function noteUntracked(before: State | undefined, next: State, type: string | undefined, skip: readonly SliceRuntime[] | null): void {
      for (const s of ctx.watched) {
        if (skip !== null && skip.includes(s)) continue
        const after = next[s.name]
        if (after === s.patchedState) continue
        s.patched = null
        s.patchedState = after
        // Learn: this type changes a slice that patches can describe; draft it next time, if
        // every such slice it changed came out of immer (frozen, as RTK's reducers leave it;
        // NEVER is final). A reducer written without immer is never handed a draft: one that
        // spreads it would run a Proxy through its own copy, and V8 may then copy slowly at that
        // site for good (a 10k-entry object: ~4 ms per copy instead of tens of µs, later stores
        // too).
        if (type !== undefined && before !== undefined && after !== before[s.name] && trackable(s) && modes.get(type) !== NEVER)
          modes.set(type, Object.isFrozen(after) ? DRAFT : NEVER)
      }
    }

    /** Reduces without drafts; the changed slices are diffed in full. */
    function reducePlain(state: State | undefined, action: UnknownAction, learn: boolean): State {
      const next = root(state, action) as State
      if (typeof next === 'object' && next !== null) noteUntracked(state, next, learn ? action.type : undefined, null)
      return next
    }

    function reduceDrafted(state: State, action: UnknownAction, tracked: SliceRuntime[]): State {
      for (const s of tracked) if (state[s.name] !== s.patchedState) s.patched = null
      const base: State = {}
      for (const s of tracked) base[s.name] = state[s.name]
      let out: unknown
      let reduced = false
      const input: State = { ...state }
      let produced: [State, Parameters<typeof notePatches>[1]]
      try {
        produced = producePatches(base, (draft) => {
          for (const s of tracked) input[s.name] = draft[s.name]
          out = root(input, action)
          reduced = true
          if (typeof out !== 'object' || out === null) return
          // A new object instead of the draft: the reducer is not of RTK's kind for this type.
          // Abort before immer finalizes it: finalizing walks the whole new value, which may
          // hold a getter that throws or nesting deeper than the stack.
          for (const s of tracked) if ((out as State)[s.name] !== draft[s.name]) throw REDUCE_PLAIN
        })
      } catch (error) {
        // The reducer's own exception is the app's, and propagates as it would without us.
        if (!reduced) throw error
        // The reducer returned a new slice object, or immer could not finalize what the reducer
        // left in the draft: this type is never drafted again, and this action is reduced
        // without drafts. Reducers are pure, so the second run gives what the first would have.
        modes.set(action.type, NEVER)
        return reducePlain(state, action, false)
      }
      if (typeof out !== 'object' || out === null) {
        modes.set(action.type, NEVER)
        return out as State
      }
      const [nextBase, patches] = produced
      let next: State
      if (out === input) {
        if (nextBase === base) return state
        next = { ...state }
      } else next = { ...(out as State) }
      for (const s of tracked) next[s.name] = nextBase[s.name]
      notePatches(tracked, patches)
      for (const s of tracked) s.patchedState = next[s.name]
      noteUntracked(state, next, undefined, tracked)
      return next
    }

    function reduceApp(state: State | undefined, action: UnknownAction): State {
      const type = action.type
      if (tracking && state !== undefined && depth <= 1 && modes.get(type) === DRAFT) {
        const tracked = ctx.watched.filter(trackable)
        if (tracked.length > 0) return reduceDrafted(state, action, tracked)
      }
      return reducePlain(state, action, depth <= 1 && tracking)
    }

    const wrapped = ((state: State | undefined, action: UnknownAction) => {
      if (typeof action.type !== 'string' || !action.type.startsWith(ACTION_PREFIX)) return reduceApp(state, action)
      let next = root(state, action) as State
      if (remoteApplied.match(action) && action.meta.instanceId === ctx.instanceId) {
        const s = ctx.slices.get(action.payload.slice)
        if (s?.kind) {
          const { puts, deletes } = action.payload
          const collection = applyChanges(s.kind, getAt(next[s.name], s.config.path), puts, deletes, s.config.getId)
          next = { ...next, [s.name]: setAt(next[s.name], s.config.path, collection) }
        }
      } else if (hydrateSlice.match(action) && action.meta.instanceId === ctx.instanceId) {
        const s = ctx.slices.get(action.payload.slice)
        if (s) next = { ...next, [s.name]: setAt(next[s.name], s.config.path, action.payload.collection) }
      }
      if (typeof next === 'object' && next !== null) noteUntracked(state, next, undefined, null)
      return next
    }) as typeof reducer
    const store = createStore(wrapped, preloadedState)
    const dispatch = store.dispatch as (action: UnknownAction) => unknown
    return {
      ...store,
      dispatch: ((action: UnknownAction) => {
        depth++
        try {
          return dispatch(action)
        } finally {
          depth--
        }
      }) as typeof store.dispatch,
    }
  }
}
