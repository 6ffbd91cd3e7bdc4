// Devices and tabs for multi-client end-to-end tests: each device has its own fake-indexeddb
// factory (its own disk), its own clock and its own network (a lossy fetch); its tabs share the
// database, a lock manager (leader election) and linked BroadcastChannel stand-ins, as tabs of
// one browser profile do. Every tab is a Redux store with the persistence middleware (on a slow
// LocalStore wrapper around the library's own IndexedDB store) and, where several tabs share a
// database, the auto-sync middleware that coordinates them.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import type { AutoSyncMiddleware, ChannelLike, ConflictStrategy, PersistenceMiddleware, SyncConflict, SyncError } from '../../../src'
import { channelHub, memoryLocks } from '../../support/coordination'
import type { FlaskServer } from '../flaskServer'
import { lib, remoteLib } from '../lib'
import { createDeviceClock, createLossyFetch, slowStore, type DeviceClock, type LossyFetch, type SlowStore } from './faults'

/** The item every test edits: `v` is unique per edit, so the server's history can tell a double apply. */
export interface Doc {
  id: string
  v: string
}

export const docsAdapter = createEntityAdapter<Doc>()
export const docsSlice = createSlice({
  name: 'docs',
  initialState: docsAdapter.getInitialState(),
  reducers: { save: docsAdapter.upsertOne, remove: docsAdapter.removeOne },
})
export const { save, remove } = docsSlice.actions

/** Settings shared by every device and tab of one scenario. */
export interface WorldOptions {
  readonly flask: FlaskServer
  /** The server collection (= the slice's storeName). Use a fresh one per scenario to isolate it. */
  readonly collection: string
  readonly strategy: ConflictStrategy
  /** @default 10 */
  readonly debounceMs?: number
  /** Local queue batch size. @default 100 */
  readonly queueBatchSize?: number
  /** remote.batchSize. @default 100 */
  readonly pushBatchSize?: number
  /** remote.timeoutMs. @default 3000 */
  readonly timeoutMs?: number
  /** Auto-sync: settle time after a change, and interval. @default { settleMs: 10, intervalMs: 300 } */
  readonly autoSync?: { readonly settleMs?: number; readonly intervalMs?: number }
  /**
   * Devices with a single tab run auto-sync too (true), or rely on the engine's own push after
   * each local write (false). Devices with two tabs always run auto-sync: it is what carries one
   * tab's commits to the other's store. @default true
   */
  readonly autoSyncSingleTab?: boolean
  /** The delay of every slow write (see `slowStore`); per device, changeable. @default () => 0 */
  readonly slowDelay?: (device: Device) => number
}

export interface World extends WorldOptions {
  readonly devices: Device[]
  /** Every tab instance ever opened (disposed ones included), for checks at the end. */
  readonly instances: Tab[]
}

/** One `remote.onConflict` call. */
export interface ConflictCall {
  readonly tab: string
  readonly device: string
  /** Which instance of the tab slot (0 at first, +1 per re-creation). */
  readonly instance: number
  readonly conflict: SyncConflict
  readonly at: number
}

export interface Device {
  readonly name: string
  readonly world: World
  readonly factory: IDBFactory
  readonly dbName: string
  readonly clock: DeviceClock
  readonly net: LossyFetch
  /** Max ms of the slow-write delay (the world's `slowDelay` may read it). */
  slowMaxMs: number
  readonly locks: ReturnType<typeof memoryLocks>
  readonly hub: ReturnType<typeof channelHub>
  readonly logoutHub: ReturnType<typeof channelHub>
  /** The live tab of each slot. */
  readonly tabs: Tab[]
  readonly tabCount: number
}

function makeStore(persistence: PersistenceMiddleware, autoSync: AutoSyncMiddleware | null) {
  return configureStore({
    reducer: { docs: docsSlice.reducer, sync: lib.syncReducer },
    // RTK's development checks off: they only slow the runs down (and warn about it).
    middleware: (g) => {
      const base = g({ serializableCheck: false, immutableCheck: false })
      return autoSync ? base.concat(persistence, autoSync) : base.concat(persistence)
    },
    enhancers: (g) => g().concat(persistence.enhancer),
  })
}
export type TabStore = ReturnType<typeof makeStore>

export interface Tab {
  /** e.g. `D1T0` */
  readonly name: string
  readonly device: Device
  readonly slot: number
  readonly instance: number
  readonly store: TabStore
  readonly persistence: PersistenceMiddleware
  readonly autoSync: AutoSyncMiddleware | null
  readonly storage: SlowStore
  readonly conflicts: ConflictCall[]
  readonly errors: SyncError[]
  disposed: boolean
}

export function createWorld(options: WorldOptions): World {
  return { ...options, devices: [], instances: [] }
}

/** Adds a device with `tabs` tabs (1 or 2) and waits until every tab hydrated. */
export async function addDevice(world: World, tabs: number, options: { clockOffsetMs?: number } = {}): Promise<Device> {
  const index = world.devices.length
  const device: Device = {
    name: `D${index}`,
    world,
    factory: new IDBFactory(),
    dbName: `device-${index}`,
    clock: createDeviceClock(options.clockOffsetMs ?? 0),
    net: createLossyFetch(),
    slowMaxMs: 0,
    locks: memoryLocks(),
    hub: channelHub(),
    logoutHub: channelHub(),
    tabs: [],
    tabCount: tabs,
  }
  world.devices.push(device)
  // One after the other, so the first tab becomes the leader.
  for (let slot = 0; slot < tabs; slot++) device.tabs.push(await openTab(device, slot, 0))
  return device
}

/** Opens a tab in `slot` of the device (a new page load on the same database) and waits for hydration. */
export async function openTab(device: Device, slot: number, instance: number): Promise<Tab> {
  const { world } = device
  const name = `${device.name}T${slot}`
  const storage = slowStore(
    lib.createIdbStore({ dbName: device.dbName, factory: device.factory, openTimeoutMs: 10_000, durability: 'default' }),
    () => world.slowDelay?.(device) ?? 0,
  )
  const conflicts: ConflictCall[] = []
  const errors: SyncError[] = []
  const persistence = lib.createPersistenceMiddleware({
    dbName: device.dbName,
    storage,
    logoutChannel: device.logoutHub.create(),
    slices: {
      docs: {
        storeName: world.collection,
        debounceMs: world.debounceMs ?? 10,
        batchSize: world.queueBatchSize ?? 100,
        conflict: world.strategy,
      },
    },
    retry: { initialDelayMs: 10, maxDelayMs: 100 },
    onError: (error) => errors.push(error),
    remote: remoteLib.createRemote({
      baseUrl: world.flask.baseUrl,
      clientId: `${name}.${instance}`,
      fetch: device.net.fetch,
      now: device.clock.now,
      timeoutMs: world.timeoutMs ?? 3000,
      batchSize: world.pushBatchSize ?? 100,
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      onConflict: (conflict) => conflicts.push({ tab: name, device: device.name, instance, conflict, at: Date.now() }),
    }),
  })
  const useAutoSync = device.tabCount > 1 || (world.autoSyncSingleTab ?? true)
  const channel: ChannelLike | null = useAutoSync ? device.hub.create() : null
  const autoSync = useAutoSync
    ? lib.createAutoSyncMiddleware({
        leader: 'auto',
        locks: device.locks,
        channel,
        syncOnChange: true,
        settleMs: world.autoSync?.settleMs ?? 10,
        intervalMs: world.autoSync?.intervalMs ?? 300,
        flushOnHide: false,
        default: false,
        onError: (error) => errors.push(error),
      })
    : null
  const store = makeStore(persistence, autoSync)
  const tab: Tab = { name, device, slot, instance, store, persistence, autoSync, storage, conflicts, errors, disposed: false }
  world.instances.push(tab)
  await persistence.whenHydrated()
  return tab
}

/**
 * Disposes the tab (`await persistence.dispose()`, which flushes), seals its storage so any
 * later write is recorded, and opens a new instance in the same slot on the same database.
 */
export async function recreateTab(tab: Tab): Promise<Tab> {
  await disposeTab(tab)
  const next = await openTab(tab.device, tab.slot, tab.instance + 1)
  tab.device.tabs[tab.slot] = next
  return next
}

export async function disposeTab(tab: Tab): Promise<void> {
  if (tab.disposed) return
  tab.disposed = true
  await tab.persistence.dispose()
  tab.autoSync?.dispose()
  tab.storage.control.seal()
}

export async function disposeWorld(world: World): Promise<void> {
  for (const device of world.devices) for (const tab of device.tabs) await disposeTab(tab)
}

export const liveTabs = (world: World): Tab[] => world.devices.flatMap((d) => d.tabs)

// ---------------------------------------------------------------- edits

/** One edit the app made: a put with a unique `v`, or a delete. */
export interface Edit {
  /** Program order across the whole scenario. */
  readonly seq: number
  readonly tab: string
  readonly device: string
  readonly key: string
  /** `null` for a delete. */
  readonly value: Doc | null
  /** Why: an app edit, or the value the test chose to resolve a manual conflict with. */
  readonly kind: 'edit' | 'merge'
}

/** Every edit of a scenario, and unique values for new ones. */
export class EditLog {
  readonly edits: Edit[] = []
  private counter = 0

  /** Dispatches a put of a fresh unique value (or a delete) of `key` in `tab`, and records it. */
  apply(tab: Tab, key: string, op: 'put' | 'delete'): Edit {
    const value = op === 'put' ? { id: key, v: `${tab.name}#${++this.counter}` } : null
    tab.store.dispatch(value ? save(value) : remove(key))
    return this.record(tab, key, value, 'edit')
  }

  /** A fresh value for `key` to resolve a conflict with (`merged`); recorded as an edit of `tab`. */
  mergeValue(tab: Tab, key: string): Doc {
    const value = { id: key, v: `${tab.name}#merge${++this.counter}` }
    this.record(tab, key, value, 'merge')
    return value
  }

  private record(tab: Tab, key: string, value: Doc | null, kind: Edit['kind']): Edit {
    const edit: Edit = { seq: this.edits.length, tab: tab.name, device: tab.device.name, key, value, kind }
    this.edits.push(edit)
    return edit
  }

  /** The latest edit of `key` by each tab slot (name), in program order. */
  latestByTab(key: string): Map<string, Edit> {
    const latest = new Map<string, Edit>()
    for (const edit of this.edits) if (edit.key === key) latest.set(edit.tab, edit)
    return latest
  }

  /** The latest edit of `key` by each device (any of its tabs), in program order. */
  latestByDevice(key: string): Map<string, Edit> {
    const latest = new Map<string, Edit>()
    for (const edit of this.edits) if (edit.key === key) latest.set(edit.device, edit)
    return latest
  }

  /** The edit that produced this `v`. */
  byValue(v: string): Edit | undefined {
    return this.edits.find((e) => e.value?.v === v)
  }

  keys(): string[] {
    return [...new Set(this.edits.map((e) => e.key))]
  }
}
