// The two versions of the library bench/profile/ab.mjs bundles side by side (its esbuild aliases).
declare module 'ris-before' {
  export { createPersistenceMiddleware, createIdbStore } from 'redux-idb-sync'
}
declare module 'ris-after' {
  export { createPersistenceMiddleware, createIdbStore } from 'redux-idb-sync'
}
