// Deterministic regressions for failures the model-based randomized test
// (test/reliability/model.soak.ts) found. Each test pins the interleaving the random run hit.
import { http } from 'msw'
import { expect, test } from 'vitest'
import { pullFlaskChanges, resolveConflict, retryDeadLetter, type ConflictStrategy } from '../../src'
import { OUTBOX_STORE } from '../../src/storage/types'
import { readStore, until } from '../support/instrumentedStore'
import { removeItem, saveFile, type FileItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
type Client = ReturnType<typeof client>

const serverRecord = (id: string) => server.model.records().find((r) => r.id === id)
const localName = (c: Client, id: string) => c.store.getState().files.entities[id]?.name

/** `doc` exists at v1 (pushed by `c`), then another device overwrites it: the server is at v2. */
async function docOverwrittenElsewhere(c: Client): Promise<void> {
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  c.store.dispatch(saveFile({ id: 'doc', name: 'v1' }))
  await c.persistence.flush()
  await until(() => c.store.getState().sync.outboxDepth === 0 && serverRecord('doc')?.version === 1, 'v1 pushed')
  const answer = server.model.writeItem('PUT', 'files', 'doc', {
    opId: 'other-device',
    value: { id: 'doc', name: 'theirs' },
    baseVersion: 1,
    clientTime: 0,
  })
  expect(answer.status).toBe(200)
}

async function edit(c: Client, name: string): Promise<void> {
  c.store.dispatch(saveFile({ id: 'doc', name }))
  await c.persistence.flush()
}

/** Runs `work` once, while the next push request is on the wire (before the server answers it). */
function whilePushing(work: () => Promise<void>): { readonly done: boolean } {
  const state = { done: false }
  msw.use(
    http.post(`${BASE_URL}/sync/push`, async () => {
      if (!state.done) {
        state.done = true
        await work()
      }
      return undefined // fall through to the mock server
    }),
  )
  return state
}

async function converged(c: Client, name: string): Promise<void> {
  await until(() => c.store.getState().sync.outboxDepth === 0 && c.persistence.getStatus().pendingOperations === 0, 'an empty outbox', 5000)
  const record = serverRecord('doc')
  expect(record?.deleted, `server: ${JSON.stringify(record)}`).toBe(false)
  expect((record?.value as FileItem | undefined)?.name).toBe(name)
  expect(localName(c, 'doc')).toBe(name)
  expect((await readStore(c.factory, OUTBOX_STORE, 'regressions')).size).toBe(0)
}

// FC_SEED=3: a local delete meets a conflict (client-wins) while the app re-creates the item;
// the re-creation commits a newer outbox entry before the conflict is settled. Settling used to
// write back its copy of the old entry (the delete) over the new one: the delete was pushed, the
// re-created item never was. Settling now happens inside one transaction that reads the row.
test('resolving a conflict never overwrites an outbox entry a local change committed meanwhile (client-wins)', async () => {
  const c = client({ dbName: 'regressions', strategy: 'client-wins' })
  await docOverwrittenElsewhere(c)
  // The re-creation commits while the conflicting push of the delete is on the wire.
  const recreated = whilePushing(() => edit(c, 'again'))
  c.store.dispatch(removeItem('doc'))
  await c.persistence.flush()
  await until(() => c.conflicts.length === 1 && recreated.done, 'the conflict and the re-creation')
  await converged(c, 'again')
})

// The same race with `manual`: parking the conflicted entry wrote a parked copy of it over the
// newer entry, so the re-created item was lost even after the user chose their own version.
test('parking a manual conflict never overwrites an outbox entry a local change committed meanwhile', async () => {
  const strategy: ConflictStrategy = 'manual'
  const c = client({ dbName: 'regressions', strategy })
  await docOverwrittenElsewhere(c)
  // The local change commits while the conflicting push is on the wire.
  const recreated = whilePushing(() => edit(c, 'again'))
  c.store.dispatch(removeItem('doc'))
  await c.persistence.flush()
  await until(() => recreated.done && c.store.getState().sync.conflicts.some((x) => x.resolution === 'pending'), 'the re-creation and a pending conflict')
  c.store.dispatch(resolveConflict({ key: 'files:doc', resolution: 'local' }))
  await converged(c, 'again')
})

// FC_SEED=6: our push is applied but its answer is lost; another device then overwrites the
// item. A pull meets that newer version while our entry still waits, takes it for a conflict
// (client-wins) and rebases the entry onto it. The server answers the replayed opId with its
// stored, older result. That answer used to be acknowledged like any other: the outbox emptied,
// the newer value was already behind the cursor, and the app and the server disagreed for good.
test('a replayed operation the server applied before and another device overwrote since: applied once, then the newer version is pulled', async () => {
  const c = client({ dbName: 'regressions', strategy: 'client-wins', remote: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } } })
  await docOverwrittenElsewhere(c)
  await c.store.dispatch(pullFlaskChanges())
  expect(localName(c, 'doc')).toBe('theirs')

  server.fail({ kind: 'lose-answer' })
  c.store.dispatch(saveFile({ id: 'doc', name: 'mine' }))
  await c.persistence.flush()
  await until(() => !c.store.getState().sync.status.flaskConnected && serverRecord('doc')?.version === 3, 'applied, answer lost')
  expect(c.store.getState().sync.outboxDepth).toBe(1)
  const later = server.model.writeItem('PUT', 'files', 'doc', { opId: 'other-device-2', value: { id: 'doc', name: 'newer' }, baseVersion: 3, clientTime: 0 })
  expect(later.status).toBe(200)

  await c.store.dispatch(pullFlaskChanges()) // meets v4 while our entry waits: looks like a conflict
  await until(() => c.store.getState().sync.outboxDepth === 0, 'the replay answered')
  await c.store.dispatch(pullFlaskChanges())

  // Our change was applied exactly once (v3); the other device's later write (v4) stands, as
  // it would have had the answer arrived.
  expect(server.model.appliedOps).toBe(4)
  expect(serverRecord('doc')).toMatchObject({ version: 4, value: { name: 'newer' } })
  expect(localName(c, 'doc')).toBe('newer')
  expect((await readStore(c.factory, 'files', 'regressions')).get('doc')).toEqual({ id: 'doc', name: 'newer' })
})

// Found by reading the FC_SEED=3 fix: retrying a dead letter writes a fresh entry of the dead
// operation's type. A local change of the key that commits meanwhile (here: the app re-creates
// an item whose delete was dead-lettered) must not be lost to that entry: the retry, the
// re-creation and their pushes all go through the key's row, so the re-created item is put last.
test('retrying a dead letter while a newer local change of the key commits pushes the local truth', async () => {
  const c = client({ dbName: 'regressions' })
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  c.store.dispatch(saveFile({ id: 'doc', name: 'v1' }))
  await c.persistence.flush()
  await until(() => c.store.getState().sync.outboxDepth === 0 && serverRecord('doc')?.version === 1, 'v1 pushed')

  server.fail({ kind: 'status', status: 422 }) // the delete is refused permanently
  c.store.dispatch(removeItem('doc'))
  await c.persistence.flush()
  await until(() => c.store.getState().sync.deadLetters.length === 1 && c.store.getState().sync.outboxDepth === 0, 'the dead letter')
  const [letter] = c.store.getState().sync.deadLetters
  expect(letter).toMatchObject({ key: 'files:doc', type: 'delete' })

  // The re-creation commits while the retried delete is on the wire.
  const recreated = whilePushing(() => edit(c, 'again'))
  c.store.dispatch(retryDeadLetter({ opId: letter!.opId }))
  await until(() => recreated.done && c.store.getState().sync.deadLetters.length === 0, 'the retry and the re-creation')
  await converged(c, 'again')
})

// FC_SEED=1 (300 runs, last-write-wins): a push of the item is on the wire when another device
// writes it, and then the app changes the item again; that change commits a newer outbox entry
// before the push's answer (a conflict) arrives. The conflict used to be judged by the time of
// the entry that was on the wire, earlier than the other device's write, so the server's
// version replaced the app's later change (and was pushed back as ours).
test('last-write-wins judges a conflict by the latest local change of the key, not by the operation on the wire', async () => {
  let clock = 1_000_000
  const c = client({ dbName: 'regressions', strategy: 'last-write-wins', remote: { now: () => clock } })
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  c.store.dispatch(saveFile({ id: 'doc', name: 'v1' }))
  await c.persistence.flush()
  await until(() => c.store.getState().sync.outboxDepth === 0 && serverRecord('doc')?.version === 1, 'v1 pushed')

  let theirs = 0
  msw.use(
    http.post(`${BASE_URL}/sync/push`, async ({ request }) => {
      const body = (await request.clone().json()) as { ops: Array<{ id: string; value?: FileItem; clientTime: number }> }
      const op = body.ops.find((o) => o.id === 'doc' && o.value?.name === 'early')
      if (op && theirs === 0) {
        // Another device writes a second after our change, then the app changes the item again
        // five seconds after it; that change commits while our push is on the wire.
        theirs = op.clientTime + 1000
        const answer = server.model.writeItem('PUT', 'files', 'doc', {
          opId: 'other-device',
          value: { id: 'doc', name: 'theirs' },
          baseVersion: 1,
          clientTime: theirs,
        })
        expect(answer.status).toBe(200)
        clock += 5000
        c.store.dispatch(saveFile({ id: 'doc', name: 'late' }))
        await c.persistence.flush()
      }
      return undefined // fall through to the mock server: a conflict with 'theirs'
    }),
  )
  c.store.dispatch(saveFile({ id: 'doc', name: 'early' }))
  await c.persistence.flush()
  await until(() => c.conflicts.length === 1, 'the conflict')
  expect(c.conflicts[0]).toMatchObject({ key: 'files:doc', strategy: 'last-write-wins', resolution: 'client' })
  expect(c.conflicts[0]!.localTime).toBeGreaterThan(theirs)
  await converged(c, 'late')
})
