// Bringing a multi-client scenario to rest, and reading every copy of the data: each tab's Redux
// state, each device's IndexedDB (read directly, with a fresh connection) and the server.
import type { SyncConflict } from '../../../src'
import type { HistoryRecord } from '../flaskServer'
import { lib } from '../lib'
import type { Device, Doc, Tab, World } from './devices'
import { liveTabs } from './devices'

/** The library's outbox object store (src/storage/types.ts). */
export const OUTBOX_STORE = '__ris_outbox'

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Reads every `[key, value]` of an object store of the device's database, with a fresh connection. */
export async function readDeviceStore(device: Device, store: string): Promise<Array<[string, unknown]>> {
  const reader = lib.createIdbStore({ dbName: device.dbName, factory: device.factory, openTimeoutMs: 10_000, durability: 'default' })
  try {
    return (await reader.readAll(store)).map(([k, v]) => [String(k), v])
  } finally {
    reader.close()
  }
}

/** The live items of the collection on the server (GET /sync/pull), by id. */
export async function serverItems(world: World): Promise<Record<string, unknown>> {
  const response = await fetch(`${world.flask.baseUrl}/sync/pull?collections=${encodeURIComponent(world.collection)}`)
  if (!response.ok) throw new Error(`GET /sync/pull answered ${response.status}`)
  const body = (await response.json()) as { items: Array<{ id: string; value: unknown; collection: string }> }
  return Object.fromEntries(body.items.filter((i) => i.collection === world.collection).map((i) => [i.id, i.value]))
}

/** The server's history of applied operations of this collection, in apply order. */
export async function serverHistory(world: World): Promise<HistoryRecord[]> {
  return (await world.flask.history()).filter((r) => r.collection === world.collection)
}

export function stateItems(tab: Tab): Record<string, Doc> {
  const { ids, entities } = tab.store.getState().docs
  return Object.fromEntries(ids.map((id) => [String(id), entities[id]!]))
}

/** What the test answers to a pending (`manual`) conflict while settling. */
export type ManualAnswer = { resolution: 'local' } | { resolution: 'server' } | { resolution: 'merged'; value: unknown }

export interface SettleOptions {
  /** Give up after this long. @default 30000 */
  readonly timeoutMs?: number
  /** Rounds in a row that must find everything quiescent and unchanged. @default 2 */
  readonly stableRounds?: number
  /** Answers each pending conflict (manual strategy); without it pending conflicts stay. */
  readonly resolve?: (tab: Tab, conflict: SyncConflict) => ManualAnswer
  /**
   * How each tab syncs: `'thunks'` (default): flush, `syncToFlaskBulk`, `pullFlaskChanges`, then
   * the leader's `syncNow()`. `'autoSync'`: a tab with auto-sync only calls its `syncNow()`
   * (flush, reload, drain, pull); tabs without auto-sync use the thunks.
   */
  readonly via?: 'thunks' | 'autoSync'
}

export interface SettleReport {
  readonly quiescent: boolean
  readonly rounds: number
  readonly ms: number
  /** Why the last round was not quiescent (empty when it was). */
  readonly busy: readonly string[]
  /** Thunks that rejected during the last round, `tab: action: message`. */
  readonly failures: readonly string[]
}

/** What keeps a scenario from being at rest, per tab and device; empty when quiescent. */
export async function busyReasons(world: World): Promise<string[]> {
  const busy: string[] = []
  for (const tab of liveTabs(world)) {
    const sync = tab.store.getState().sync
    const pending = tab.persistence.getStatus().pendingOperations
    if (pending > 0) busy.push(`${tab.name}: ${pending} pending local write(s)`)
    if (sync.outboxDepth > 0) busy.push(`${tab.name}: outboxDepth ${sync.outboxDepth}`)
    const open = sync.conflicts.filter((c) => c.resolution === 'pending')
    if (open.length > 0) busy.push(`${tab.name}: ${open.length} pending conflict(s) ${open.map((c) => c.key).join(', ')}`)
    if (sync.deadLetters.length > 0) busy.push(`${tab.name}: ${sync.deadLetters.length} dead letter(s)`)
  }
  for (const device of world.devices) {
    const outbox = await readDeviceStore(device, OUTBOX_STORE)
    if (outbox.length > 0) busy.push(`${device.name}: ${outbox.length} stored outbox entr(ies): ${outbox.map(([k]) => k).join(', ')}`)
  }
  return busy
}

/**
 * Ends the faults (server up, no injected 5xx, no lost answers) and syncs every live tab,
 * round after round (see `via`), until
 * nothing is pending anywhere and `stableRounds` rounds in a row changed nothing (the server's
 * history and every tab's state). Slow writes and clock offsets stay: they are conditions the
 * library must live with, not faults.
 */
export async function settle(world: World, options: SettleOptions = {}): Promise<SettleReport> {
  const started = Date.now()
  const timeoutMs = options.timeoutMs ?? 30_000
  const stableRounds = options.stableRounds ?? 2
  await world.flask.start()
  await world.flask.failNext(0, 503)
  for (const device of world.devices) device.net.clear()
  let previous = ''
  let stable = 0
  let rounds = 0
  let busy: string[] = []
  let failures: string[] = []
  while (Date.now() - started < timeoutMs) {
    rounds++
    failures = []
    for (const tab of liveTabs(world)) {
      if (options.resolve) {
        for (const conflict of tab.store.getState().sync.conflicts.filter((c) => c.resolution === 'pending')) {
          const answer = options.resolve(tab, conflict)
          tab.store.dispatch(lib.resolveConflict({ key: conflict.key, ...answer } as Parameters<typeof lib.resolveConflict>[0]))
        }
      }
      if (options.via === 'autoSync' && tab.autoSync) {
        await tab.autoSync.syncNow().catch((e: unknown) => failures.push(`${tab.name}: syncNow: ${String(e)}`))
        continue
      }
      await tab.persistence.flush().catch((e: unknown) => failures.push(`${tab.name}: flush: ${String(e)}`))
      const pushed = await tab.store.dispatch(lib.syncToFlaskBulk())
      if (lib.syncToFlaskBulk.rejected.match(pushed)) failures.push(`${tab.name}: syncToFlaskBulk: ${pushed.payload?.message ?? pushed.error.message}`)
      const pulled = await tab.store.dispatch(lib.pullFlaskChanges())
      if (lib.pullFlaskChanges.rejected.match(pulled)) failures.push(`${tab.name}: pullFlaskChanges: ${pulled.payload?.message ?? pulled.error.message}`)
      if (tab.autoSync?.isLeader()) await tab.autoSync.syncNow().catch((e: unknown) => failures.push(`${tab.name}: syncNow: ${String(e)}`))
    }
    await pause(30)
    busy = await busyReasons(world)
    const signature = JSON.stringify([(await world.flask.stats()).appliedOps, liveTabs(world).map(stateItems)])
    if (busy.length === 0 && failures.length === 0 && signature === previous) stable++
    else stable = 0
    previous = signature
    if (stable >= stableRounds) return { quiescent: true, rounds, ms: Date.now() - started, busy: [], failures: [] }
  }
  return { quiescent: false, rounds, ms: Date.now() - started, busy, failures }
}

/** Every copy of the data at one moment. */
export interface Snapshot {
  readonly tabs: ReadonlyArray<{
    readonly name: string
    readonly device: string
    readonly instance: number
    readonly state: Record<string, Doc>
    readonly outboxDepth: number
    readonly pending: number
    readonly conflicts: readonly SyncConflict[]
    readonly deadLetters: number
  }>
  readonly devices: ReadonlyArray<{ readonly name: string; readonly stored: Record<string, unknown>; readonly outbox: readonly string[] }>
  readonly server: Record<string, unknown>
  readonly history: readonly HistoryRecord[]
}

export async function snapshot(world: World): Promise<Snapshot> {
  const tabs = liveTabs(world).map((tab) => {
    const sync = tab.store.getState().sync
    return {
      name: tab.name,
      device: tab.device.name,
      instance: tab.instance,
      state: stateItems(tab),
      outboxDepth: sync.outboxDepth,
      pending: tab.persistence.getStatus().pendingOperations,
      conflicts: sync.conflicts,
      deadLetters: sync.deadLetters.length,
    }
  })
  const devices = []
  for (const device of world.devices) {
    devices.push({
      name: device.name,
      stored: Object.fromEntries(await readDeviceStore(device, world.collection)),
      outbox: (await readDeviceStore(device, OUTBOX_STORE)).map(([k]) => k),
    })
  }
  return { tabs, devices, server: await serverItems(world), history: await serverHistory(world) }
}
