// Random concurrent field edits on two devices through the whole engine (msw mock server): in
// either order of arrival, the server and both devices end with the reference three-way merge,
// and no field edit only one device made is lost.
import fc from 'fast-check'
import { IDBFactory } from 'fake-indexeddb'
import { expect, test } from 'vitest'
import { pullFlaskChanges, syncFromFlaskBulk } from '../../src'
import { threeWayMerge } from '../../src/utils/fieldPatch'
import { until } from '../support/instrumentedStore'
import { setFiles, type FileItem } from '../support/store'
import { makeSyncedStore, useMockSync } from '../support/synced'

const { server } = useMockSync()
const runs = Number(process.env.FC_RUNS ?? 25)

type Doc = Record<string, unknown> & { id: string }
const value = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 2 }), fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 2 }))
const fields = ['name', 'body', 'x', 'y'] as const
const doc = fc.record(
  { name: fc.constantFrom('n0', 'n1'), body: value, x: value, y: fc.record({ p: value, q: value }, { requiredKeys: [] }) },
  { requiredKeys: ['name'] },
)
/** An edit: some fields set to new values, some removed (never `name`, which the slice reads). */
const edit = fc.record(
  {
    body: fc.option(value),
    x: fc.option(value),
    y: fc.option(fc.record({ p: value, q: value }, { requiredKeys: [] })),
    name: fc.constantFrom('n0', 'n1', 'n2'),
  },
  { requiredKeys: [] },
)
const applyEdit = (base: Doc, e: Record<string, unknown>): Doc => {
  const next: Doc = { ...base }
  for (const [k, v] of Object.entries(e)) {
    if (v === null) delete next[k]
    else next[k] = v
  }
  return next
}

test('two devices, random field edits, random arrival order: the reference merge, and every one-sided edit kept', async () => {
  await fc.assert(
    fc.asyncProperty(doc, edit, edit, fc.boolean(), async (start, editA, editB, aFirst) => {
      server.reset()
      const base: Doc = { id: 'doc', ...start }
      const made = ['alice', 'bob'].map((name) =>
        makeSyncedStore({ factory: new IDBFactory(), dbName: name, files: { fieldMerge: true }, strategy: 'server-wins' }),
      )
      const [alice, bob] = made as [ReturnType<typeof makeSyncedStore>, ReturnType<typeof makeSyncedStore>]
      try {
        await Promise.all(made.map((c) => c.persistence.whenHydrated()))
        await until(() => made.every((c) => c.store.getState().sync.status.flaskConnected), 'connections')
        alice.store.dispatch(setFiles([base as unknown as FileItem]))
        await alice.persistence.flush()
        await until(() => alice.store.getState().sync.outboxDepth === 0, 'base pushed')
        await bob.store.dispatch(syncFromFlaskBulk())
        const a = applyEdit(base, editA)
        const b = applyEdit(base, editB)
        const order: Array<[ReturnType<typeof makeSyncedStore>, Doc]> = aFirst
          ? [
              [alice, a],
              [bob, b],
            ]
          : [
              [bob, b],
              [alice, a],
            ]
        for (const [c, next] of order) {
          c.store.dispatch(setFiles([next as unknown as FileItem]))
          await c.persistence.flush()
          await until(() => c.store.getState().sync.outboxDepth === 0, 'edit pushed')
        }
        const [first, second] = [order[0]![1], order[1]![1]]
        // server-wins: a field both changed keeps the value that arrived first.
        const reference = threeWayMerge(base, second, first, () => 'server')
        const onServer = server.model.records().find((r) => r.id === 'doc')!.value
        expect(onServer).toEqual(reference.value)
        for (const c of made) {
          await c.store.dispatch(pullFlaskChanges())
          await until(() => c.store.getState().sync.outboxDepth === 0, 'settled')
          expect(c.store.getState().files.entities.doc).toEqual(reference.value)
        }
        for (const k of fields) {
          const clash = reference.conflicts.some((p) => p[0] === k)
          if (clash) continue
          for (const [side, other] of [
            [a, b],
            [b, a],
          ] as const) {
            const changed = JSON.stringify(side[k]) !== JSON.stringify(base[k])
            const otherChanged = JSON.stringify(other[k]) !== JSON.stringify(base[k])
            if (changed && !otherChanged) expect((onServer as Doc)[k], `the one-sided edit of ${k}`).toEqual(side[k])
          }
        }
      } finally {
        for (const c of made) await c.persistence.dispose()
      }
    }),
    { numRuns: runs },
  )
}, 120_000)
