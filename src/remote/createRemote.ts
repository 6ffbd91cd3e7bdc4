import { REMOTE_PLUGIN, type RemotePlugin } from '../core/ports'
import { createSyncEngine, type SyncEngine } from './createSyncEngine'
import { checkRemoteOptions, type CheckedRemoteOptions, type RemoteOptions } from './options'

/** What `createRemote` returns: pass it as the `remote` option of `createPersistenceMiddleware`. */
export interface Remote extends RemotePlugin<SyncEngine> {
  /** The options, checked, with their defaults filled in (`clientId` stays as given: each instance draws its own). */
  readonly options: CheckedRemoteOptions
}

/**
 * The remote to sync with: the server (docs/protocol.md; the reference Flask server in server/),
 * and how to sync with it. It lives in its own entry, `redux-idb-sync/remote`, so an app that
 * persists locally only never bundles the sync engine and ky. Every option is checked here,
 * once: a bad value throws an `InvalidOptionError` naming it (`remote.baseUrl`).
 *
 * @example
 * ```ts
 * import { createPersistenceMiddleware } from 'redux-idb-sync'
 * import { createRemote } from 'redux-idb-sync/remote'
 *
 * const persistence = createPersistenceMiddleware({
 *   slices: { files: {} },
 *   remote: createRemote({ baseUrl: 'https://example.com/api', getToken: () => session.token }),
 * })
 * ```
 */
export function createRemote(options: RemoteOptions): Remote {
  const checked = checkRemoteOptions(options)
  return {
    kind: REMOTE_PLUGIN,
    options: checked,
    create: (host) => createSyncEngine(host, checked),
  }
}
