// Item sync states are published incrementally: the outbox, the parked conflicts and the dead
// letters note the keys they change, and publishing looks at those keys only. Random changes of
// the three maps (clears included), published at random points: the sync slice always shows
// exactly what a full recomputation from the maps gives.
import fc from 'fast-check'
import type { UnknownAction } from '@reduxjs/toolkit'
import { isDeepStrictEqual } from 'node:util'
import { expect, test } from 'vitest'
import { itemStateMaps, publishItemStates, type EngineContext, type ParkedConflict, type StoredDeadLetter } from '../../src/remote/engineContext'
import type { OutboxRow } from '../../src/remote/outbox'
import { initialSyncState, syncReducer, type SyncState } from '../../src/remote/redux/syncSlice'

const runs = Number(process.env.FC_RUNS ?? 200)

const keys = ['a:1', 'a:2', 'a:3', 'b:1', 'b:2'] as const
const sliceOf = (key: string): string => key.split(':')[0]!
const opIds = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'] as const

const row = (key: string, ops: number): OutboxRow => ({
  format: 2,
  key,
  slice: sliceOf(key),
  collection: sliceOf(key),
  id: key.split(':')[1]!,
  ops: Array.from({ length: ops }, (_, i) => ({ opId: `${key}-${i}`, type: 'put', value: i, baseVersion: null, clientTime: 0, seq: i, sent: false })),
})
const parked = (key: string): ParkedConflict =>
  ({ conflict: { key, slice: sliceOf(key), resolution: 'pending' }, server: null, throughSeq: 0 }) as unknown as ParkedConflict
const dead = (key: string, opId: string): StoredDeadLetter =>
  ({ row: { key, slice: sliceOf(key), collection: sliceOf(key), id: key.split(':')[1]! }, op: { opId }, letter: { opId } }) as unknown as StoredDeadLetter

type Step =
  | { kind: 'setRow'; key: string; ops: number }
  | { kind: 'deleteRow' | 'park' | 'unpark'; key: string }
  | { kind: 'bury'; opId: string; key: string }
  | { kind: 'unbury'; opId: string }
  | { kind: 'clearRows' | 'clearParked' | 'clearDead' | 'publish' }

const key = fc.constantFrom(...keys)
const opId = fc.constantFrom(...opIds)
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('setRow' as const), key, ops: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constantFrom('deleteRow' as const, 'park' as const, 'unpark' as const), key }),
  fc.record({ kind: fc.constant('bury' as const), opId, key }),
  fc.record({ kind: fc.constant('unbury' as const), opId }),
  fc.record({ kind: fc.constantFrom('clearRows' as const, 'clearParked' as const, 'clearDead' as const) }),
  fc.constant({ kind: 'publish' as const }),
  fc.constant({ kind: 'publish' as const }),
)

/** What the sync slice must show: the states recomputed from all three maps (conflict > pending > rejected). */
function expected(ctx: EngineContext): Pick<SyncState, 'items' | 'counts'> {
  const next = new Map<string, { slice: string; state: 'pending' | 'conflict' | 'rejected' }>()
  for (const stored of ctx.deadLetters.values()) next.set(stored.row.key, { slice: stored.row.slice, state: 'rejected' })
  for (const r of ctx.rows.values()) if (r.ops.length > 0) next.set(r.key, { slice: r.slice, state: 'pending' })
  for (const [k, p] of ctx.parked) next.set(k, { slice: p.conflict.slice, state: 'conflict' })
  const items: SyncState['items'] = {}
  const counts: SyncState['counts'] = {}
  for (const [k, { slice, state }] of next) {
    items[k] = state
    const c = (counts[slice] ??= { pending: 0, conflict: 0, rejected: 0 })
    c[state]++
  }
  return { items, counts }
}

test('published item states always equal a full recomputation from the outbox, the parked conflicts and the dead letters', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      let state: SyncState = initialSyncState
      let dispatched = 0
      const ctx = {
        ...itemStateMaps(),
        published: new Map(),
        silenced: false,
        host: {
          dispatch: (action: UnknownAction) => {
            dispatched++
            state = syncReducer(state, action)
          },
        },
      } as unknown as EngineContext
      for (const s of [...steps, { kind: 'publish' } as const]) {
        if (s.kind === 'setRow') ctx.rows.set(s.key, row(s.key, s.ops))
        else if (s.kind === 'deleteRow') ctx.rows.delete(s.key)
        else if (s.kind === 'park') ctx.parked.set(s.key, parked(s.key))
        else if (s.kind === 'unpark') ctx.parked.delete(s.key)
        else if (s.kind === 'bury') ctx.deadLetters.set(s.opId, dead(s.key, s.opId))
        else if (s.kind === 'unbury') ctx.deadLetters.delete(s.opId)
        else if (s.kind === 'clearRows') ctx.rows.clear()
        else if (s.kind === 'clearParked') ctx.parked.clear()
        else if (s.kind === 'clearDead') ctx.deadLetters.clear()
        else {
          const before = dispatched
          const shown = { items: state.items, counts: state.counts }
          publishItemStates(ctx)
          expect({ items: state.items, counts: state.counts }).toEqual(expected(ctx))
          // Incremental: what was noted is consumed, so the next publish starts from nothing.
          expect([ctx.touched.all, ctx.touched.keys.size]).toEqual([false, 0])
          // Nothing is dispatched when nothing changed.
          if (isDeepStrictEqual(shown, expected(ctx))) expect(dispatched).toBe(before)
        }
      }
    }),
    { numRuns: runs },
  )
})
