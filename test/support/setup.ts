// idb recognises requests and transactions with `instanceof IDBRequest` etc., so the IndexedDB
// classes must be globals, as in a browser. We install fake-indexeddb's classes but NOT a global
// `indexedDB`: every test passes its own `new IDBFactory()`, so tests never share a database,
// and the SSR tests see a runtime without IndexedDB.
import {
  IDBCursor,
  IDBCursorWithValue,
  IDBDatabase,
  IDBIndex,
  IDBKeyRange,
  IDBObjectStore,
  IDBOpenDBRequest,
  IDBRequest,
  IDBTransaction,
  IDBVersionChangeEvent,
} from 'fake-indexeddb'

Object.assign(globalThis, {
  IDBCursor,
  IDBCursorWithValue,
  IDBDatabase,
  IDBIndex,
  IDBKeyRange,
  IDBObjectStore,
  IDBOpenDBRequest,
  IDBRequest,
  IDBTransaction,
  IDBVersionChangeEvent,
})
