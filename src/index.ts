export { createPersistenceMiddleware, type PersistenceMiddleware } from './persistence/createPersistenceMiddleware'
export {
  configurePersistence,
  disablePersistence,
  enablePersistence,
  flushPersistence,
} from './persistence/registry'
export type {
  PersistenceOptions,
  RuntimeSliceConfig,
  SlicePersistenceConfig,
} from './persistence/options'
export type { PersistenceStatus, SliceStatus } from './persistence/status'
export type { ShapeKind } from './persistence/shapes'
export { hydrateSlice, persistenceFailed } from './persistence/actions'
export { createMemoryStore } from './storage/memoryStore'
export type { ItemId, LocalStore, StorageOp } from './storage/types'
export * from './errors'
