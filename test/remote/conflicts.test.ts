import { describe, expect, test } from 'vitest'
import { checkFlaskConnection, pullFlaskChanges, resolveConflict, syncFromFlaskBulk, type ConflictStrategy } from '../../src'
import { until } from '../support/instrumentedStore'
import { saveFile, type FileItem } from '../support/store'
import { useMockSync, type SyncedOptions } from '../support/synced'

const { server, client } = useMockSync()
type Client = ReturnType<typeof client>
const serverName = (id: string) => (server.model.records().find((r) => r.id === id)?.value as FileItem | undefined)?.name
const localName = (c: Client, id: string) => c.store.getState().files.entities[id]?.name

async function edit(c: Client, name: string) {
  c.store.dispatch(saveFile({ id: 'doc', name }))
  await c.persistence.flush()
}

/** Alice and Bob both start from v1 of `doc`; Bob's edit reaches the server first. */
async function twoClients(strategy: ConflictStrategy, aliceOptions: SyncedOptions = {}) {
  const alice = client({ strategy, dbName: 'alice', ...aliceOptions })
  const bob = client({ dbName: 'bob' })
  await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
  await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
  await edit(alice, 'v1')
  await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1 pushed')
  await bob.store.dispatch(syncFromFlaskBulk())
  expect(localName(bob, 'doc')).toBe('v1')
  await edit(bob, 'bob')
  await until(() => bob.store.getState().sync.outboxDepth === 0, 'bob pushed')
  return { alice, bob }
}

const merge: ConflictStrategy = ({ local, server: remote }) => ({ id: 'doc', name: `${(remote as FileItem).name}+${(local as FileItem).name}` })

describe.each<[string, ConflictStrategy, string, 'server' | 'client' | 'merged']>([
  ['server-wins', 'server-wins', 'bob', 'server'],
  ['client-wins', 'client-wins', 'alice', 'client'],
  ['last-write-wins', 'last-write-wins', 'alice', 'client'],
  ['a custom merge', merge, 'bob+alice', 'merged'],
])('conflicts under %s', (_name, strategy, winner, resolution) => {
  test('detected during push: recorded in state and onConflict, settled by the strategy', async () => {
    const { alice } = await twoClients(strategy)
    await edit(alice, 'alice')
    await until(() => alice.conflicts.length === 1, 'the conflict')
    await until(() => serverName('doc') === winner && localName(alice, 'doc') === winner && alice.store.getState().sync.outboxDepth === 0, 'convergence')
    const [conflict] = alice.conflicts
    expect(conflict).toMatchObject({ key: 'files:doc', phase: 'push', resolution, server: { value: { id: 'doc', name: 'bob' }, version: 2 } })
    expect(alice.store.getState().sync.conflicts).toEqual([expect.objectContaining({ key: 'files:doc', resolution })])
  })

  test('detected during pull: a pending local change meets a newer server version', async () => {
    // Long backoff: after the outage only the pull reconnects Alice.
    const { alice } = await twoClients(strategy, { remote: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } } })
    // Alice knows she is offline before she edits, so her change is pending and was never sent
    // (a change whose push may have reached the server is decided by that push's answer).
    server.down()
    await alice.store.dispatch(checkFlaskConnection())
    await until(() => !alice.store.getState().sync.status.flaskConnected, 'offline')
    await edit(alice, 'alice')
    server.up()
    await alice.store.dispatch(pullFlaskChanges())
    await until(() => alice.conflicts.length >= 1, 'the conflict')
    expect(alice.conflicts[0]).toMatchObject({ key: 'files:doc', phase: 'pull', resolution })
    await until(() => serverName('doc') === winner && localName(alice, 'doc') === winner && alice.store.getState().sync.outboxDepth === 0, 'convergence', 5000)
  })
})

describe('manual conflicts', () => {
  test.each([
    ['local', 'alice'],
    ['server', 'bob'],
    ['merged', 'by hand'],
  ] as const)('both versions stay until resolved with %s', async (choice, expected) => {
    const { alice } = await twoClients('manual')
    await edit(alice, 'alice')
    await until(() => alice.store.getState().sync.conflicts.some((c) => c.resolution === 'pending'), 'a pending conflict')
    const pending = alice.store.getState().sync.conflicts[0]!
    expect(pending).toMatchObject({ local: { id: 'doc', name: 'alice' }, server: { value: { id: 'doc', name: 'bob' } }, strategy: 'manual' })
    expect(localName(alice, 'doc')).toBe('alice')
    expect(serverName('doc')).toBe('bob')
    expect(alice.store.getState().sync.outboxDepth).toBe(1) // parked, not lost
    alice.store.dispatch(
      choice === 'merged'
        ? resolveConflict({ key: 'files:doc', resolution: 'merged', value: { id: 'doc', name: 'by hand' } })
        : resolveConflict({ key: 'files:doc', resolution: choice }),
    )
    await until(() => serverName('doc') === expected && localName(alice, 'doc') === expected && alice.store.getState().sync.outboxDepth === 0, 'resolution')
    expect(alice.store.getState().sync.conflicts.at(-1)?.resolution).toBe(choice === 'local' ? 'client' : choice)
  })
})

describe('manual conflicts: an edit made while the conflict is open', () => {
  test.each([
    ['local', 'alice again'],
    ['server', 'bob'],
    ['merged', 'by hand'],
  ] as const)('the conflict shows it, and resolving with %s settles it too (nothing goes out on top)', async (choice, expected) => {
    const { alice } = await twoClients('manual')
    await edit(alice, 'alice')
    await until(() => alice.store.getState().sync.conflicts.some((c) => c.resolution === 'pending'), 'a pending conflict')
    const applied = server.model.appliedOps
    await edit(alice, 'alice again')
    // The open conflict's local side is the newest edit: what the app decides about.
    await until(() => (alice.store.getState().sync.conflicts[0]?.local as FileItem | undefined)?.name === 'alice again', 'the conflict follows the edit')
    expect(alice.store.getState().sync.conflicts).toHaveLength(1)
    expect(alice.conflicts).toHaveLength(1) // changed, not announced again
    expect(serverName('doc')).toBe('bob')
    alice.store.dispatch(
      choice === 'merged'
        ? resolveConflict({ key: 'files:doc', resolution: 'merged', value: { id: 'doc', name: 'by hand' } })
        : resolveConflict({ key: 'files:doc', resolution: choice }),
    )
    await until(() => serverName('doc') === expected && localName(alice, 'doc') === expected && alice.store.getState().sync.outboxDepth === 0, 'resolution')
    // One write for 'local' and 'merged', none for 'server': the edit made before the decision
    // is not pushed over it afterwards.
    expect(server.model.appliedOps - applied).toBe(choice === 'server' ? 0 : 1)
    await alice.persistence.flush()
    expect(serverName('doc')).toBe(expected)
    expect(localName(alice, 'doc')).toBe(expected)
  })
})

test('a conflict caused by our own lost acknowledgement is not a conflict', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  server.fail({ kind: 'lose-answer' })
  await edit(c, 'first')
  // Edit again before the replay: the new entry supersedes the one whose answer was lost.
  await edit(c, 'second')
  await until(() => c.store.getState().sync.outboxDepth === 0 && serverName('doc') === 'second', 'convergence', 5000)
  expect(c.conflicts).toEqual([])
  expect(c.store.getState().sync.conflicts).toEqual([])
  expect(server.model.appliedOps).toBe(2)
})
