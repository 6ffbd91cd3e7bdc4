// The `redux-idb-sync/remote` entry: the sync engine and what needs it or ky. The core entry
// (`redux-idb-sync`) reaches the engine only through the `RemotePlugin` port (core/ports.ts), so
// an app that never imports this entry never bundles it.
export { createRemote, type Remote } from './createRemote'
export type { CheckedRemoteOptions, RealtimeOptions, RemoteOptions } from './options'
export { createApiClient, type ApiClient, type ApiClientOptions, type ApiPaths, type HeadersOption } from './http/client'
export type { ChangesResponse, HealthResponse, ItemWriteResult, PullResponse, PushResponse, PushResult, RemoteOperation, RemoteRecord } from './http/protocol'
export type { SyncEngine, StagedChange } from './createSyncEngine'
export type { OutboxOp, OutboxRow } from './outbox'
