import { describe, expect, test } from 'vitest'
import { runChildScript } from '../support/childScript'

// A Node script that follows the README's Quick start (local-only) must end when its work is
// done: channels and timers the library keeps open on its own (the logout BroadcastChannel,
// auto-sync's interval and its tab channel) must not hold the event loop.

const quickStart = (extra: string) => `
import 'fake-indexeddb/auto'
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, syncReducer } from 'redux-idb-sync'

const files = createEntityAdapter()
const filesSlice = createSlice({
  name: 'files',
  initialState: files.getInitialState(),
  reducers: { saveFile: files.upsertOne, deleteFile: files.removeOne, setFiles: files.setAll },
})

export const persistence = createPersistenceMiddleware({
  dbName: 'my-app',
  slices: { files: { storeName: 'files', debounceMs: 300, batchSize: 10 } },
})
${extra}
export const store = configureStore({
  reducer: { files: filesSlice.reducer, sync: syncReducer },
  middleware: (getDefault) => getDefault().concat(persistence, ...companions),
  enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
})

await persistence.whenHydrated()
store.dispatch(filesSlice.actions.saveFile({ id: 'a', name: 'notes.txt', body: 'hi' }))
await persistence.flush()
console.log('flushed', persistence.getStatus().pendingOperations, persistence.getStatus().errorCount)
`

describe('a Node script exits by itself once its work is done', () => {
  test.each([
    ['the Quick start, local-only', 'const companions = []'],
    [
      'the Quick start with the monitor and auto-sync',
      "const companions = [createSyncMonitorMiddleware(), createAutoSyncMiddleware({ intervalMs: 30000, leader: 'always' })]",
    ],
  ])('%s', async (_name, extra) => {
    const run = await runChildScript(quickStart(extra), 8000)
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain('flushed 0 0')
    expect(run).toMatchObject({ exited: true, code: 0 })
    expect(run.ms).toBeLessThan(5000)
  })
})
