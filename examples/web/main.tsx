// A notes editor on redux-idb-sync: notes persist in IndexedDB, sync to the reference Flask
// server, and conflicts are settled by hand in the dashboard. Each note shows its sync state;
// a change the server refuses rolls back to the server's text, with the reason beside it.
import { configureStore, createEntityAdapter, createSlice, type PayloadAction } from '@reduxjs/toolkit'
import { StrictMode, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { Provider, useDispatch, useSelector } from 'react-redux'
import { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, selectItemRejections, syncReducer } from 'redux-idb-sync'
import { createRemote } from 'redux-idb-sync/remote'
import { PersistenceDashboard, PersistenceProvider, useItemSyncState } from 'redux-idb-sync/react'

interface Note {
  id: string
  text: string
}

const notes = createEntityAdapter<Note>()
const notesSlice = createSlice({
  name: 'notes',
  initialState: notes.getInitialState(),
  reducers: {
    saveNote: notes.upsertOne,
    deleteNote: notes.removeOne,
    renameNote(state, action: PayloadAction<{ id: string; text: string }>) {
      const note = state.entities[action.payload.id]
      if (note) note.text = action.payload.text
    },
  },
})
const { saveNote, deleteNote, renameNote } = notesSlice.actions

const params = new URLSearchParams(location.search)
const api = params.get('api') ?? 'http://127.0.0.1:5000/api'
// ?realtime=ws://127.0.0.1:8765 turns real-time sync on; ?token=... for a server that needs one
// (it travels in headers and in the socket's first message, never in a URL the app builds).
const realtime = params.get('realtime')
const token = params.get('token')
const intervalMs = Number(params.get('interval') ?? 5000)
// Both delays are part of every edit's way to the other devices (docs/realtime.md, "Where the
// time goes"). With real-time on, none: the write still folds the changes of one tick into one
// transaction, and the push follows the write at once. Without it, writes and pushes are batched
// more. ?debounce= and ?settle= override them.
const debounceMs = Number(params.get('debounce') ?? (realtime ? 0 : 200))
const settleMs = Number(params.get('settle') ?? (realtime ? 0 : 300))

const persistence = createPersistenceMiddleware({
  dbName: 'notes-example',
  slices: { notes: { debounceMs, conflict: 'manual' } },
  remote: createRemote({
    baseUrl: api,
    timeoutMs: 3000,
    retry: { initialDelayMs: 300, maxDelayMs: 2000 },
    ...(token ? { getToken: () => token } : {}),
    ...(realtime ? { realtime } : {}),
  }),
})
const monitor = createSyncMonitorMiddleware()
const autoSync = createAutoSyncMiddleware({ intervalMs, settleMs, maxQueueSize: 20 })

const store = configureStore({
  reducer: { notes: notesSlice.reducer, sync: syncReducer },
  middleware: (getDefault) => getDefault().concat(persistence, monitor, autoSync),
  enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
})
type RootState = ReturnType<typeof store.getState>
// For tests and the browser console: the store, its middleware and the notes' actions (the
// real-time browser test times an edit from its dispatch in one page to the other page's store).
Object.assign(window, { notesExample: { store, persistence, monitor, autoSync, actions: notesSlice.actions } })

const BADGE = { synced: 'Saved', pending: 'Saving…', conflict: 'Conflict', rejected: 'Rejected' } as const

/** The note's sync state; re-renders only when this note's state changes. */
function SyncBadge({ id }: { id: string }) {
  const state = useItemSyncState('notes', id)
  const [rejection] = useSelector((root: RootState) => selectItemRejections(root, 'notes', id))
  return (
    <span className="badge" data-state={state} data-testid={`badge-${id}`}>
      {BADGE[state]}
      {state === 'rejected' && rejection ? (
        <span className="reason">
          : {rejection.message}
          {rejection.rolledBack ? ' (the server’s version is shown)' : ''}
        </span>
      ) : null}
    </span>
  )
}

let counter = 0
const newId = (): string => `n${Date.now().toString(36)}${(counter++).toString(36)}`

function Notes() {
  const dispatch = useDispatch()
  const list = useSelector((state: RootState) => notes.getSelectors().selectAll(state.notes))
  const [draft, setDraft] = useState('')
  return (
    <section aria-label="Notes">
      <h1>Notes</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          if (!draft.trim()) return
          dispatch(saveNote({ id: newId(), text: draft.trim() }))
          setDraft('')
        }}
      >
        <label>
          New note <input value={draft} onChange={(e) => setDraft(e.target.value)} />
        </label>{' '}
        <button type="submit">Add</button>
      </form>
      <ul className="notes" aria-label="Note list">
        {list.map((note) => (
          <li key={note.id} data-id={note.id}>
            <input aria-label={`Note ${note.id}`} value={note.text} onChange={(e) => dispatch(renameNote({ id: note.id, text: e.target.value }))} />
            <button type="button" onClick={() => dispatch(deleteNote(note.id))} aria-label={`Delete note ${note.id}`}>
              Delete
            </button>{' '}
            <SyncBadge id={note.id} />
          </li>
        ))}
      </ul>
    </section>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Provider store={store}>
      <PersistenceProvider persistence={persistence} monitor={monitor} autoSync={autoSync}>
        <Notes />
        <PersistenceDashboard title="Sync dashboard" />
      </PersistenceProvider>
    </Provider>
  </StrictMode>,
)
