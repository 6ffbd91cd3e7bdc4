import { StorageBlockedError, StorageUnavailableError } from '../errors'
import { wrapDatabase, type Database } from './idbAdapter'

/** One attempt to open an IndexedDB connection, and what its owner is told afterwards. */
export interface OpenConnection {
  readonly factory: IDBFactory
  readonly dbName: string
  /** `undefined`: the current version. */
  readonly version: number | undefined
  /** Object stores an upgrade creates when they are missing. */
  readonly wanted: ReadonlySet<string>
  /** How long the open may take before it fails with `StorageBlockedError`. */
  readonly openTimeoutMs: number
  /** Another connection holds up this open. */
  onBlocked(): void
  /** Another connection upgrades the database (`deleted`: deletes it); the handle must close at once. */
  onVersionChange(handle: Database, deleted: boolean): void
  /** The browser closed the connection abnormally. */
  onClose(handle: Database): void
}

/**
 * Opens `dbName`, creating the wanted stores in an upgrade. Every open has a timeout: a blocked
 * upgrade otherwise hangs forever, and `blocked` cannot reject the open. A `VersionError` is
 * rejected as is (the caller retries at the current version); other failures are
 * `StorageUnavailableError`.
 */
export function openConnection(options: OpenConnection): Promise<Database> {
  const { factory, dbName, version, wanted, openTimeoutMs } = options
  return new Promise<Database>((resolve, reject) => {
    let settled = false
    let blocked = false
    let request: IDBOpenDBRequest
    try {
      request = version === undefined ? factory.open(dbName) : factory.open(dbName, version)
    } catch (error) {
      reject(new StorageUnavailableError(`indexedDB.open("${dbName}") threw`, { cause: error }))
      return
    }
    const timer = setTimeout(() => {
      settled = true
      reject(
        new StorageBlockedError(
          blocked
            ? `opening "${dbName}" is blocked by another connection that does not close`
            : `opening "${dbName}" did not finish within ${openTimeoutMs} ms`,
          { dbName, timeoutMs: openTimeoutMs, blocked },
        ),
      )
    }, openTimeoutMs)
    request.onupgradeneeded = () => {
      const raw = request.result
      for (const name of wanted) if (!raw.objectStoreNames.contains(name)) raw.createObjectStore(name)
    }
    request.onblocked = () => {
      blocked = true
      options.onBlocked()
    }
    request.onsuccess = () => {
      const raw = request.result
      // An open that finishes after its timeout must not stay open: it would block others.
      if (settled) {
        raw.close()
        return
      }
      settled = true
      clearTimeout(timer)
      const handle = wrapDatabase(raw)
      // `newVersion: null` is a deleteDatabase(), not another connection's upgrade.
      raw.onversionchange = (event) => options.onVersionChange(handle, event.newVersion === null)
      // `close` fires only when the browser closed the connection abnormally.
      raw.onclose = () => options.onClose(handle)
      resolve(handle)
    }
    request.onerror = (event) => {
      event.preventDefault()
      if (settled) return
      settled = true
      clearTimeout(timer)
      const error = request.error
      if (error?.name === 'VersionError') reject(error)
      else reject(new StorageUnavailableError(`indexedDB.open("${dbName}") failed: ${error?.message ?? 'unknown error'}`, { cause: error }))
    }
  })
}
