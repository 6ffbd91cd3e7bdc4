import { createIdbStore } from '../../src/storage/idbStore'
import type { LocalStore, StorageOp } from '../../src/storage/types'
import type { SyncError } from '../../src/errors'

/** A real IndexedDB store (fake-indexeddb) that records every committed transaction and can be told to fail. */
export interface InstrumentedStore extends LocalStore {
  /** The ops of each committed transaction, in commit order. */
  readonly commits: StorageOp[][]
  /** Only the transactions that wrote slice data (not the library's own stores). */
  sliceCommits(): StorageOp[][]
  /** The next `count` commits reject with `error` (nothing of them is written). */
  /** The next `count` commits (of those `match` accepts, all by default) reject with `error`; nothing of them is written. */
  failNext(error: SyncError, count?: number, match?: (ops: readonly StorageOp[]) => boolean): void
}

/** `inner` with its `commit` replaced; every other call goes straight through. */
export function withCommit(inner: LocalStore, commit: (ops: readonly StorageOp[]) => Promise<void>): LocalStore {
  return {
    kind: inner.kind,
    persistent: inner.persistent,
    ensureStores: (names) => inner.ensureStores(names),
    readAll: (store) => inner.readAll(store),
    get: (store, key) => inner.get(store, key),
    getMany: (store, keys) => inner.getMany(store, keys),
    close: () => inner.close(),
    commit,
  }
}

export function instrumentedStore(factory: IDBFactory, dbName = 'redux-idb-sync', openTimeoutMs = 2000): InstrumentedStore {
  const inner = createIdbStore({ dbName, openTimeoutMs, factory, durability: 'default' })
  const commits: StorageOp[][] = []
  const failures: Array<{ error: SyncError; match: (ops: readonly StorageOp[]) => boolean }> = []
  /** The failure for a commit of `ops`, if one is due. */
  const failureFor = (ops: readonly StorageOp[]): SyncError | undefined => {
    const next = failures[0]
    if (!next || ops.length === 0 || !next.match(ops)) return undefined
    failures.shift()
    return next.error
  }
  return {
    ...withCommit(inner, async (ops) => {
      const failure = failureFor(ops)
      if (failure) throw failure
      await inner.commit(ops)
      commits.push([...ops])
    }),
    // A real transaction, recorded like a commit: what it wrote, once it committed.
    async transact(stores, work) {
      const ops: StorageOp[] = []
      const result = await inner.transact(stores, async (tx) => {
        const value = await work({
          get: (store, key) => tx.get(store, key),
          put(store, key, value, ref) {
            tx.put(store, key, value, ref)
            ops.push({ type: 'put', store, key, value, ...(ref ? { ref } : {}) })
          },
          delete(store, key) {
            tx.delete(store, key)
            ops.push({ type: 'delete', store, key })
          },
        })
        // An injected failure hits the next transaction that writes (one that only reads commits nothing).
        const failure = failureFor(ops)
        if (failure) throw failure
        return value
      })
      if (ops.length > 0) commits.push(ops)
      return result
    },
    commits,
    sliceCommits: () => commits.filter((ops) => ops.some((op) => !op.store.startsWith('__ris_'))),
    failNext(error, count = 1, match = () => true) {
      for (let i = 0; i < count; i++) failures.push({ error, match })
    },
  }
}

/** Reads every `[key, value]` of a store with a fresh connection (what a reload would see). */
export async function readStore(factory: IDBFactory, store: string, dbName = 'redux-idb-sync'): Promise<Map<unknown, unknown>> {
  const reader = createIdbStore({ dbName, openTimeoutMs: 2000, factory, durability: 'default' })
  try {
    return new Map(await reader.readAll(store))
  } finally {
    reader.close()
  }
}

/** Writes one record with a fresh connection, as another tab or an older version of the library would. */
export async function writeRecord(factory: IDBFactory, store: string, key: string, value: unknown, dbName = 'redux-idb-sync'): Promise<void> {
  const writer = createIdbStore({ dbName, openTimeoutMs: 2000, factory, durability: 'default' })
  try {
    await writer.commit([{ type: 'put', store, key, value }])
  } finally {
    writer.close()
  }
}

/** Waits until `check` holds, failing after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what = 'condition', timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
