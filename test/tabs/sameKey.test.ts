// Two tabs of one browser change the same item within each other's debounce window. IndexedDB
// orders their commits; these tests check that the change made last wins in both tabs and in
// storage, and that no tab keeps showing a value storage no longer holds.
import { IDBFactory } from 'fake-indexeddb'
import { expect, test } from 'vitest'
import type { ChannelLike, LockManagerLike } from '../../src'
import { createIdbStore } from '../../src/storage/idbStore'
import type { TransactionalStore } from '../../src/storage/types'
import { channelHub, memoryLocks } from '../support/coordination'
import { readStore, until } from '../support/instrumentedStore'
import { saveFile } from '../support/store'
import { useMockTabs } from '../support/tabs'

const { tab: syncedTab } = useMockTabs()

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Storage whose transactions commit at once but report it `lateMs` later (a busy tab's slow continuation). */
function lateReporting(inner: TransactionalStore, lateMs: () => number): TransactionalStore {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (property !== 'transact' || typeof value !== 'function')
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      return async (...args: unknown[]) => {
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
        const ms = lateMs()
        if (ms > 0) await pause(ms)
        return result
      }
    },
  })
}

function tab(factory: IDBFactory, locks: LockManagerLike, channel: ChannelLike, options: { debounceMs: number; lateMs?: () => number }) {
  const raw = createIdbStore({ dbName: 'tabs', factory, openTimeoutMs: 2000, durability: 'default' })
  const storage = options.lateMs ? lateReporting(raw, options.lateMs) : raw
  return syncedTab(factory, locks, channel, { debounceMs: options.debounceMs, storage })
}
type Tab = ReturnType<typeof tab>

const nameIn = (t: Tab): string | undefined => t.store.getState().files.entities.doc?.name
const stored = async (factory: IDBFactory): Promise<string | undefined> =>
  ((await readStore(factory, 'files', 'tabs')).get('doc') as { name?: string } | undefined)?.name

/** A channel whose incoming messages wait while `held` is true (a slow cross-tab delivery). */
function holdable(inner: ChannelLike): ChannelLike & { held: boolean; release(): void } {
  const waiting: Array<() => void> = []
  const channel = {
    held: false,
    release() {
      channel.held = false
      for (const deliver of waiting.splice(0)) deliver()
    },
    postMessage: (message: unknown) => inner.postMessage(message),
    addEventListener: (type: 'message', listener: (event: { data: unknown }) => void) =>
      inner.addEventListener(type, (event) => (channel.held ? waiting.push(() => listener(event)) : listener(event))),
    removeEventListener: () => {},
    close: () => inner.close(),
  }
  return channel
}

async function twoTabs(a: { debounceMs: number; lateMs?: () => number }, b: { debounceMs: number }, firstChannel?: (c: ChannelLike) => ChannelLike) {
  const factory = new IDBFactory()
  const locks = memoryLocks()
  const hub = channelHub()
  const first = tab(factory, locks, firstChannel ? firstChannel(hub.create()) : hub.create(), a)
  const second = tab(factory, locks, hub.create(), b)
  await Promise.all([first.persistence.whenHydrated(), second.persistence.whenHydrated()])
  return { factory, first, second }
}

test("a change still waiting in one tab's queue yields to the other tab's later change, which committed first", async () => {
  const { factory, first, second } = await twoTabs({ debounceMs: 200 }, { debounceMs: 5 })
  first.store.dispatch(saveFile({ id: 'doc', name: 'earlier' })) // waits 200 ms in the first tab
  await pause(2)
  second.store.dispatch(saveFile({ id: 'doc', name: 'later' }))
  await second.persistence.flush()
  await until(() => nameIn(first) === 'later', 'the later change in the first tab')
  // The first tab's own change was dropped, not written over the later one.
  expect(first.persistence.getStatus().pendingOperations).toBe(0)
  await pause(250)
  await first.persistence.flush()
  expect(nameIn(first)).toBe('later')
  expect(nameIn(second)).toBe('later')
  expect(await stored(factory)).toBe('later')
})

test('a change made after the other tab committed still wins over it', async () => {
  const { factory, first, second } = await twoTabs({ debounceMs: 50 }, { debounceMs: 5 })
  second.store.dispatch(saveFile({ id: 'doc', name: 'earlier' }))
  await second.persistence.flush()
  first.store.dispatch(saveFile({ id: 'doc', name: 'later' }))
  await pause(20) // the relay of 'earlier' arrives while 'later' waits
  expect(nameIn(first)).toBe('later')
  await first.persistence.flush()
  await until(() => nameIn(second) === 'later', 'the later change in the second tab')
  expect(await stored(factory)).toBe('later')
})

test("a tab whose write was still settling when the other tab's later change arrived shows what storage holds once it settled", async () => {
  // The first tab's transactions commit at once but report it 40 ms late: the second tab's
  // change commits after the first one's and is announced while the first tab still counts its
  // own write as queued.
  const { factory, first, second } = await twoTabs({ debounceMs: 5, lateMs: () => 40 }, { debounceMs: 5 })
  first.store.dispatch(saveFile({ id: 'doc', name: 'earlier' }))
  await until(async () => (await stored(factory)) === 'earlier', 'the first write committed')
  expect(first.persistence.getStatus().pendingOperations).toBe(1) // not settled yet
  second.store.dispatch(saveFile({ id: 'doc', name: 'later' }))
  await second.persistence.flush()
  expect(await stored(factory)).toBe('later')
  await until(() => first.persistence.getStatus().pendingOperations === 0, 'the first write settled')
  await until(() => nameIn(first) === 'later', 'storage read again in the first tab')
  expect(nameIn(second)).toBe('later')
})

test("an earlier change whose write starts before the other tab's later commit reaches its tab is not written over it", async () => {
  let slow: ReturnType<typeof holdable> | undefined
  const { factory, first, second } = await twoTabs({ debounceMs: 60 }, { debounceMs: 5 }, (c) => (slow = holdable(c)))
  slow!.held = true // the second tab's commit announcement reaches the first tab late
  first.store.dispatch(saveFile({ id: 'doc', name: 'earlier' }))
  await pause(2)
  second.store.dispatch(saveFile({ id: 'doc', name: 'later' }))
  await second.persistence.flush()
  expect(nameIn(first)).toBe('earlier') // not announced yet
  await first.persistence.flush() // its debounce ends: the write finds the later change stored
  expect(await stored(factory)).toBe('later')
  await until(() => nameIn(first) === 'later', 'the stored change in the first tab')
  slow!.release()
  await pause(10)
  expect(nameIn(first)).toBe('later')
  expect(nameIn(second)).toBe('later')
  expect(await stored(factory)).toBe('later')
})
