import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test } from 'vitest'
import { selectItemSyncState } from '../../src'
import { channelHub, memoryLocks } from '../support/coordination'
import { readStore, until } from '../support/instrumentedStore'
import { rejectOps } from '../support/rejecting'
import { addItem, updateItem } from '../support/store'
import { useMockTabs } from '../support/tabs'

const { server, msw, tab } = useMockTabs()

describe('rollback across tabs', () => {
  test("a follower tab's rejected edit, pushed by the leader, rolls back in both tabs, and both show it as rejected", async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const leader = tab(factory, locks, hub.create())
    const follower = tab(factory, locks, hub.create())
    await leader.persistence.whenHydrated()
    await follower.persistence.whenHydrated()
    await until(() => leader.autoSync.isLeader(), 'the leader')
    expect(follower.autoSync.isLeader()).toBe(false)
    leader.store.dispatch(addItem({ id: 'a', name: 'good' }))
    await leader.persistence.flush()
    await leader.autoSync.syncNow()
    await until(() => follower.store.getState().files.entities.a?.name === 'good', 'the item in the follower')

    rejectOps(msw, server, (op) => ((op.value as { name?: string } | undefined)?.name === 'bad' ? 'name is not allowed' : null))
    follower.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await follower.persistence.flush()
    await until(() => leader.store.getState().files.entities.a?.name === 'bad', 'the edit in the leader')
    await leader.autoSync.syncNow()

    for (const t of [leader, follower]) {
      await until(() => t.store.getState().files.entities.a?.name === 'good', 'the rollback in each tab')
      await until(() => selectItemSyncState(t.store.getState(), 'files', 'a') === 'rejected', 'the rejected state in each tab')
      expect(t.store.getState().sync.deadLetters).toMatchObject([{ key: 'files:a', message: 'name is not allowed', rolledBack: true }])
    }
    expect((await readStore(factory, 'files', 'tabs')).get('a')).toEqual({ id: 'a', name: 'good' })
  })
})
