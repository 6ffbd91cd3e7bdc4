import { configureStore, createEntityAdapter, createSlice, type PayloadAction } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { createPersistenceMiddleware, type PersistenceOptions } from '../../src'

export interface FileItem {
  id: string
  name: string
  body?: unknown
}

export const filesAdapter = createEntityAdapter<FileItem>()

/** An entity-adapter slice with the seed's action families. */
export const filesSlice = createSlice({
  name: 'files',
  initialState: filesAdapter.getInitialState(),
  reducers: {
    addItem: filesAdapter.addOne,
    updateItem: filesAdapter.upsertOne,
    removeItem: filesAdapter.removeOne,
    saveFile: filesAdapter.upsertOne,
    setFiles: filesAdapter.setAll,
    deleteFile: filesAdapter.removeOne,
    renameAll(state, action: PayloadAction<string>) {
      for (const id of state.ids) state.entities[id]!.name = action.payload
    },
  },
})

/** A record-keyed slice. */
export const notesSlice = createSlice({
  name: 'notes',
  initialState: {} as Record<string, { text: string }>,
  reducers: {
    setNote(state, action: PayloadAction<{ id: string; text: string }>) {
      state[action.payload.id] = { text: action.payload.text }
    },
    removeNote(state, action: PayloadAction<string>) {
      delete state[action.payload]
    },
  },
})

/** An array slice nested under `items`. */
export const todosSlice = createSlice({
  name: 'todos',
  initialState: { items: [] as Array<{ id: number; title: string; done?: boolean }>, filter: 'all' },
  reducers: {
    addTodo(state, action: PayloadAction<{ id: number; title: string }>) {
      state.items.push(action.payload)
    },
    toggle(state, action: PayloadAction<number>) {
      const todo = state.items.find((t) => t.id === action.payload)
      if (todo) todo.done = !todo.done
    },
    removeTodo(state, action: PayloadAction<number>) {
      state.items = state.items.filter((t) => t.id !== action.payload)
    },
    setFilter(state, action: PayloadAction<string>) {
      state.filter = action.payload
    },
  },
})

export const { addItem, updateItem, removeItem, saveFile, setFiles, deleteFile, renameAll } = filesSlice.actions
export const { setNote, removeNote } = notesSlice.actions
export const { addTodo, toggle, removeTodo, setFilter } = todosSlice.actions

export const defaultSlices = {
  files: { storeName: 'files' },
  notes: { storeName: 'notes' },
  todos: { storeName: 'todos', path: ['items'], shape: 'array' },
} satisfies PersistenceOptions['slices']

/** Builds a store wired like the README's quick start. */
export function makeStore(options: Partial<PersistenceOptions> & { indexedDB: IDBFactory }) {
  const persistence = createPersistenceMiddleware({ slices: defaultSlices, onError: () => {}, ...options })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, notes: notesSlice.reducer, todos: todosSlice.reducer },
    middleware: (getDefault) => getDefault().concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  return { store, persistence }
}

export const newFactory = (): IDBFactory => new IDBFactory()
