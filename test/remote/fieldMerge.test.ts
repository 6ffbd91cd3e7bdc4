import { describe, expect, test } from 'vitest'
import { checkFlaskConnection, pullFlaskChanges, syncFromFlaskBulk, type ConflictStrategy } from '../../src'
import { until } from '../support/instrumentedStore'
import { saveFile, type FileItem } from '../support/store'
import { useMockSync, type SyncedOptions } from '../support/synced'

const { server, client } = useMockSync()
type Client = ReturnType<typeof client>
const serverDoc = () => server.model.records().find((r) => r.id === 'doc')?.value as FileItem | undefined
const localDoc = (c: Client) => c.store.getState().files.entities.doc

/** The push bodies a client sent, parsed. */
function recorder() {
  const pushes: Array<{ ops: Array<Record<string, unknown>> }> = []
  const capture: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    if (request.url.endsWith('/sync/push')) pushes.push((await request.clone().json()) as { ops: Array<Record<string, unknown>> })
    return fetch(request)
  }
  return { pushes, fetch: capture }
}

async function edit(c: Client, change: Partial<FileItem>) {
  c.store.dispatch(saveFile({ ...localDoc(c)!, ...change }))
  await c.persistence.flush()
}
const drained = (c: Client) => c.store.getState().sync.outboxDepth === 0

/** Alice and Bob both hold v1 of `doc`; then Bob's edit reaches the server first. */
async function twoClients(strategy: ConflictStrategy, bobEdit: Partial<FileItem>, alice: SyncedOptions = {}) {
  const wire = recorder()
  const a = client({ strategy, dbName: 'alice', files: { fieldMerge: true }, ...alice, remote: { fetch: wire.fetch, ...alice.remote } })
  const b = client({ dbName: 'bob', files: { fieldMerge: true } })
  await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
  await until(() => a.store.getState().sync.status.flaskConnected && b.store.getState().sync.status.flaskConnected, 'connections')
  a.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'b1' }))
  await a.persistence.flush()
  await until(() => drained(a), 'v1 pushed')
  await b.store.dispatch(syncFromFlaskBulk())
  expect(localDoc(b)).toEqual({ id: 'doc', name: 'v1', body: 'b1' })
  await edit(b, bobEdit)
  await until(() => drained(b), 'bob pushed')
  return { alice: a, bob: b, wire }
}

describe('fieldMerge: two devices editing one item', () => {
  test('different fields: both edits are kept, with no conflict, and the push carried only the changed field', async () => {
    const { alice, bob, wire } = await twoClients('server-wins', { body: 'bob' })
    await edit(alice, { name: 'alice' })
    await until(() => drained(alice) && localDoc(alice)?.body === 'bob', 'alice got the merged item')
    expect(serverDoc()).toEqual({ id: 'doc', name: 'alice', body: 'bob' })
    expect(localDoc(alice)).toEqual({ id: 'doc', name: 'alice', body: 'bob' })
    await bob.store.dispatch(pullFlaskChanges())
    expect(localDoc(bob)).toEqual({ id: 'doc', name: 'alice', body: 'bob' })
    expect(alice.conflicts).toEqual([])
    expect(bob.conflicts).toEqual([])
    const last = wire.pushes.at(-1)!.ops[0]!
    expect(last).toMatchObject({ type: 'patch', patch: { name: 'alice' }, base: { name: 'v1' }, baseVersion: 1 })
    expect(last).not.toHaveProperty('value')
  })

  test('a change pending while offline merges with a pulled version that changed other fields, with no conflict', async () => {
    const { alice } = await twoClients('server-wins', { body: 'bob' }, { remote: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } } })
    server.down()
    await alice.store.dispatch(checkFlaskConnection())
    await until(() => !alice.store.getState().sync.status.flaskConnected, 'offline')
    await edit(alice, { name: 'alice' })
    server.up()
    await alice.store.dispatch(pullFlaskChanges())
    await until(() => drained(alice) && serverDoc()?.name === 'alice', 'the merge pushed')
    expect(serverDoc()).toEqual({ id: 'doc', name: 'alice', body: 'bob' })
    expect(localDoc(alice)).toEqual({ id: 'doc', name: 'alice', body: 'bob' })
    expect(alice.conflicts).toEqual([])
  })

  describe.each<[ConflictStrategy, string, 'merged' | 'client']>([
    ['server-wins', 'bob', 'merged'],
    ['client-wins', 'alice', 'client'],
  ])('the same field under %s', (strategy, name, resolution) => {
    test('is a conflict decided for that field only; the other field edit is kept', async () => {
      const { alice } = await twoClients(strategy, { name: 'bob' })
      await edit(alice, { name: 'alice', body: 'alice body' })
      await until(() => alice.conflicts.length === 1, 'the conflict')
      await until(() => drained(alice) && serverDoc()?.name === name && localDoc(alice)?.name === name, 'convergence')
      expect(serverDoc()).toEqual({ id: 'doc', name, body: 'alice body' })
      expect(localDoc(alice)).toEqual({ id: 'doc', name, body: 'alice body' })
      expect(alice.conflicts[0]).toMatchObject({ key: 'files:doc', phase: 'push', resolution })
    })
  })

  test('a custom merge receives base, local and server', async () => {
    const seen: unknown[] = []
    const merge: ConflictStrategy = (context) => {
      seen.push({ base: context.base, local: context.local, server: context.server })
      return { id: 'doc', name: 'merged', body: (context.local as FileItem).body }
    }
    const { alice } = await twoClients(merge, { name: 'bob' })
    await edit(alice, { name: 'alice' })
    await until(() => drained(alice) && serverDoc()?.name === 'merged', 'the merge pushed')
    expect(seen).toEqual([
      { base: { id: 'doc', name: 'v1', body: 'b1' }, local: { id: 'doc', name: 'alice', body: 'b1' }, server: { id: 'doc', name: 'bob', body: 'b1' } },
    ])
  })

  test('a slice without fieldMerge still sends whole values and conflicts on different fields', async () => {
    const { alice, wire } = await twoClients('server-wins', { body: 'bob' }, { files: { fieldMerge: false } })
    await edit(alice, { name: 'alice' })
    await until(() => alice.conflicts.length === 1 && drained(alice), 'the conflict')
    expect(serverDoc()).toEqual({ id: 'doc', name: 'v1', body: 'bob' })
    expect(wire.pushes.at(-1)!.ops[0]).toMatchObject({ type: 'put', value: { id: 'doc', name: 'alice', body: 'b1' } })
  })
})
