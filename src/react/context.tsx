import { createContext, useContext, useEffect, type ReactNode } from 'react'
import type { AutoSyncMiddleware } from '../autoSync/createAutoSyncMiddleware'
import type { SyncMonitorMiddleware } from '../monitor/createSyncMonitorMiddleware'
import type { PersistenceMiddleware } from '../persistence/createPersistenceMiddleware'
import type { SyncState } from '../remote/redux/syncSlice'
import { selectSyncAtSync } from '../remote/redux/selectors'
import { onPageHide } from '../utils/pageHide'

/** What the hooks and the dashboard read from `<PersistenceProvider>`. */
export interface PersistenceContextValue {
  readonly persistence: PersistenceMiddleware
  readonly monitor: SyncMonitorMiddleware | null
  readonly autoSync: AutoSyncMiddleware | null
  /** Reads the sync slice from the root state (the app mounts `syncReducer` where it likes). */
  readonly selectSync: (state: unknown) => SyncState
}

const PersistenceContext = createContext<PersistenceContextValue | null>(null)

/** The default `selectSync`: the slice mounted under `sync`, or the initial state when absent. */
export { selectSyncAtSync }

/** Props of {@link PersistenceProvider}. */
export interface PersistenceProviderProps {
  persistence: PersistenceMiddleware
  monitor?: SyncMonitorMiddleware | null
  autoSync?: AutoSyncMiddleware | null
  /**
   * Reads the sync slice.
   * @default (state) => state.sync
   */
  selectSync?: (state: unknown) => SyncState
  /**
   * Flush pending writes when the provider unmounts and when the page is hidden or unloaded.
   * @default true
   */
  flushOnHide?: boolean
  children?: ReactNode
}

/**
 * Makes the persistence instance (and optionally the monitor and auto-sync) available to
 * `usePersistence` and `<PersistenceDashboard>`. Place it inside react-redux's `<Provider>`.
 *
 * @example
 * ```tsx
 * <Provider store={store}>
 *   <PersistenceProvider persistence={persistence} monitor={monitor} autoSync={autoSync}>
 *     <App />
 *   </PersistenceProvider>
 * </Provider>
 * ```
 */
export function PersistenceProvider(props: PersistenceProviderProps) {
  const { persistence, monitor = null, autoSync = null, selectSync = selectSyncAtSync, flushOnHide = true, children } = props
  useFlushOnHide(flushOnHide ? persistence : null)
  return <PersistenceContext.Provider value={{ persistence, monitor, autoSync, selectSync }}>{children}</PersistenceContext.Provider>
}

/** The provider's value; throws a clear error outside a `<PersistenceProvider>`. */
export function usePersistenceContext(): PersistenceContextValue {
  const value = useContext(PersistenceContext)
  if (!value) throw new Error('redux-idb-sync/react: wrap your components in <PersistenceProvider persistence={...}>')
  return value
}

/**
 * Automatic flush on component unmount: flushes `persistence` when the calling
 * component unmounts, and whenever the page is hidden (`visibilitychange`) or unloaded
 * (`pagehide`). Flush failures go to the instance's `onError`, never to React.
 */
export function useFlushOnHide(persistence: Pick<PersistenceMiddleware, 'flush'> | null): void {
  useEffect(() => {
    if (!persistence) return undefined
    const flush = (): void => {
      persistence.flush().catch(() => undefined)
    }
    const stop = onPageHide(flush)
    return () => {
      stop()
      flush()
    }
  }, [persistence])
}
