// The page of faults.browser.test.ts: the library (from src/, bundled by esbuild) in a real
// Chromium, on its real IndexedDB, syncing with the real Flask server. The test drives it through
// `window.harness`; everything it returns is plain data.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { createPersistenceMiddleware, isFlushError, syncReducer, type PersistenceMiddleware } from '../../src'
import { createRemote } from '../../src/remote'

interface Note {
  id: string
  text: string
}
const adapter = createEntityAdapter<Note>()
const notes = createSlice({ name: 'notes', initialState: adapter.getInitialState(), reducers: { save: adapter.upsertOne } })

function makeStore(persistence: PersistenceMiddleware) {
  return configureStore({
    reducer: { notes: notes.reducer, sync: syncReducer },
    middleware: (getDefault) => getDefault().concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
}

let persistence: PersistenceMiddleware | null = null
let store: ReturnType<typeof makeStore> | null = null
const errors: string[] = []

const harness = {
  /** A store persisting `notes` into `dbName`, syncing with `baseUrl`. */
  async open(baseUrl: string, dbName: string, debounceMs = 10): Promise<void> {
    persistence = createPersistenceMiddleware({
      dbName,
      slices: { notes: { debounceMs } },
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      onError: (error) => errors.push(error.name),
      remote: createRemote({ baseUrl, timeoutMs: 2000, retry: { initialDelayMs: 50, maxDelayMs: 300 } }),
    })
    store = makeStore(persistence)
    await persistence.whenHydrated()
  },
  save(id: string, text: string): void {
    store!.dispatch(notes.actions.save({ id, text }))
  },
  /** `null` when everything was committed, else the names of the errors the FlushError lists. */
  async flush(): Promise<string[] | null> {
    try {
      await persistence!.flush()
      return null
    } catch (error) {
      return isFlushError(error) ? error.errors.map((e) => e.name) : [String(error)]
    }
  },
  texts(): Record<string, string> {
    const { entities } = store!.getState().notes
    return Object.fromEntries(Object.values(entities).map((n) => [n.id, n.text.length > 40 ? `${n.text.length} characters` : n.text]))
  },
  status(): { lastError: string | null; pending: number; outbox: number; disposed: boolean } {
    const s = persistence!.getStatus()
    return { lastError: s.lastError?.name ?? null, pending: s.pendingOperations, outbox: store!.getState().sync.outboxDepth, disposed: s.disposed }
  },
  /** Logout: `persistence.clear()`. */
  async clear(): Promise<void> {
    await persistence!.clear()
  },
  errors: (): string[] => [...errors],
  /** What a reload would see: every key of the store, read with a connection of its own. */
  async stored(dbName: string): Promise<string[]> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    try {
      if (!db.objectStoreNames.contains('notes')) return []
      const keys = await new Promise<IDBValidKey[]>((resolve, reject) => {
        const request = db.transaction('notes').objectStore('notes').getAllKeys()
        request.onsuccess = () => resolve(request.result)
        request.onerror = () => reject(request.error)
      })
      return keys.map(String)
    } finally {
      db.close()
    }
  },
  /** Another part of the page (or another tab) deletes the database while it is open. */
  deleteDatabase(dbName: string): Promise<string> {
    return new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(dbName)
      request.onsuccess = () => resolve('deleted')
      request.onerror = () => resolve(`error: ${request.error?.name ?? 'unknown'}`)
      request.onblocked = () => resolve('blocked')
    })
  },
  async dispose(): Promise<void> {
    await persistence?.dispose()
    persistence = null
    store = null
  },
}

declare global {
  interface Window {
    harness: typeof harness
  }
}
window.harness = harness
