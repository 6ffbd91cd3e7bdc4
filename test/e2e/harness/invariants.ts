// The promise, as checks: "an operation the app made is either on the server or still queued
// durably, never lost and never applied twice". Each checker returns violations (empty: it
// holds) with a readable message, so a test can report all of them at once.
import type { ConflictStrategy } from '../../../src'
import type { HistoryRecord } from '../flaskServer'
import type { ConflictCall, EditLog, World } from './devices'
import type { SettleReport, Snapshot } from './settle'

export type InvariantId =
  | 'settled' // everything quiescent after the faults stopped: no stall
  | 'a:converged' // every tab's state, every IndexedDB and the server hold the same items
  | 'b:applied-once' // no value applied under two opIds
  | 'b:no-invented-value' // every applied value is one the app wrote
  | 'c:latest-edit-wins' // a shared key ends with some tab's latest edit, never a superseded one
  | 'c:client-wins-kept' // client-wins: each device's latest put of a key reached the server
  | 'd:conflict-once' // the same conflict is announced once
  | 'd:state-matches-announcements' // state.sync.conflicts lists what onConflict announced
  | 'd:resolution-fits-strategy'
  | 'e:private-kept' // a key one tab alone edits ends with that tab's last edit
  | 'e:no-conflict-on-private' // nobody else wrote it: a conflict there is a false one
  | 'g:no-write-after-dispose'

export interface Violation {
  readonly invariant: InvariantId
  readonly message: string
}

/** Short form of a stored item: its `v`, `∅` when absent. */
export function show(value: unknown): string {
  if (value === undefined || value === null) return '∅'
  if (typeof value === 'object' && value !== null && 'v' in value) return String((value as { v: unknown }).v)
  return JSON.stringify(value)
}
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
const historyOf = (history: readonly HistoryRecord[], key: string): string =>
  history
    .filter((r) => r.id === key)
    .map((r) => `v${r.version}=${r.deleted ? 'deleted' : show(r.value)} (seq ${r.seq}, op ${r.opId.slice(0, 8)})`)
    .join(' → ') || '(never written)'

/** 'settled': the settle loop reached quiescence. */
export function checkSettled(report: SettleReport): Violation[] {
  if (report.quiescent) return []
  return [
    {
      invariant: 'settled',
      message: `not quiescent after ${report.rounds} rounds / ${report.ms} ms: ${[...report.busy, ...report.failures].join('; ')}`,
    },
  ]
}

/** (a) Every tab's Redux state, every device's IndexedDB and the server's live items are equal. */
export function checkConverged(s: Snapshot): Violation[] {
  const out: Violation[] = []
  const copies: Array<[string, Record<string, unknown>]> = [
    ...s.tabs.map((t): [string, Record<string, unknown>] => [`${t.name} state`, t.state]),
    ...s.devices.map((d): [string, Record<string, unknown>] => [`${d.name} IndexedDB`, d.stored]),
  ]
  for (const [where, items] of copies) {
    const keys = new Set([...Object.keys(items), ...Object.keys(s.server)])
    const diffs = [...keys].filter((k) => !same(items[k], s.server[k])).sort()
    if (diffs.length > 0) {
      out.push({
        invariant: 'a:converged',
        message: `${where} differs from the server: ${diffs.map((k) => `${k}: ${show(items[k])} vs server ${show(s.server[k])} [history ${historyOf(s.history, k)}]`).join('; ')}`,
      })
    }
  }
  return out
}

/** (b) No value applied twice (under two opIds), and no applied value nobody wrote. */
export function checkAppliedOnce(s: Snapshot, edits: EditLog): Violation[] {
  const out: Violation[] = []
  const byValue = new Map<string, HistoryRecord[]>()
  for (const record of s.history) {
    if (record.deleted) continue
    const key = JSON.stringify(record.value)
    byValue.set(key, [...(byValue.get(key) ?? []), record])
  }
  for (const records of byValue.values()) {
    const opIds = new Set(records.map((r) => r.opId))
    if (opIds.size > 1) {
      const first = records[0]!
      const author = edits.byValue(show(first.value))
      out.push({
        invariant: 'b:applied-once',
        message: `${first.id}: value ${show(first.value)}${author ? ` (written by ${author.tab}, edit #${author.seq})` : ''} applied ${records.length} times under ${opIds.size} opIds: ${records.map((r) => `v${r.version} seq ${r.seq} op ${r.opId.slice(0, 8)}`).join(', ')} [history ${historyOf(s.history, first.id)}]`,
      })
    }
  }
  for (const record of s.history) {
    if (record.deleted) continue
    if (!edits.byValue(show(record.value))) {
      out.push({ invariant: 'b:no-invented-value', message: `${record.id}: applied ${JSON.stringify(record.value)}, which no tab wrote (seq ${record.seq})` })
    }
  }
  return out
}

/**
 * (c) Shared keys: the final value is the latest edit of some tab (a delete: absent); no tab's
 * edit that its own author later superseded comes back. With `client-wins`, additionally each
 * device's latest put of the key (any tab, program order) was applied on the server at some point:
 * client-wins never drops a local change, so that value must appear in the history.
 */
export function checkLatestEdits(s: Snapshot, edits: EditLog, shared: readonly string[], strategy: ConflictStrategy): Violation[] {
  const out: Violation[] = []
  for (const key of shared) {
    const latest = edits.latestByTab(key)
    if (latest.size === 0) continue
    const final = s.server[key]
    const candidates = [...latest.values()]
    if (!candidates.some((e) => same(e.value, final))) {
      const older = edits.edits.find((e) => e.key === key && e.value && same(e.value, final))
      out.push({
        invariant: 'c:latest-edit-wins',
        message: `${key}: final ${show(final)}${older ? ` is ${older.tab}'s edit #${older.seq}, which ${older.tab} superseded later` : ''}; the latest edits were ${candidates.map((e) => `${e.tab}: ${show(e.value)} (#${e.seq})`).join(', ')} [history ${historyOf(s.history, key)}]`,
      })
    }
    if (strategy === 'client-wins') {
      for (const edit of edits.latestByDevice(key).values()) {
        if (!edit.value) continue
        if (!s.history.some((r) => r.id === key && same(r.value, edit.value))) {
          out.push({
            invariant: 'c:client-wins-kept',
            message: `${key}: ${edit.device}'s latest edit ${show(edit.value)} (#${edit.seq}, ${edit.tab}) never reached the server under client-wins; final ${show(final)} [history ${historyOf(s.history, key)}]`,
          })
        }
      }
    }
  }
  return out
}

/** (e) Private keys (one tab slot alone edits each): the final value is that tab's last edit, and no conflict was ever reported for it. */
export function checkPrivateKeys(s: Snapshot, edits: EditLog, owners: ReadonlyMap<string, string>, calls: readonly ConflictCall[]): Violation[] {
  const out: Violation[] = []
  for (const [key, owner] of owners) {
    const mine = edits.edits.filter((e) => e.key === key)
    const strangers = mine.filter((e) => e.tab !== owner)
    if (strangers.length > 0) throw new Error(`test bug: private key ${key} of ${owner} edited by ${strangers[0]!.tab}`)
    const last = mine.at(-1)
    if (!last) continue
    const final = s.server[key]
    if (!same(final, last.value)) {
      out.push({
        invariant: 'e:private-kept',
        message: `${key} (only ${owner} edits it): final ${show(final)}, but ${owner}'s last edit was ${show(last.value)} (#${last.seq}) [history ${historyOf(s.history, key)}]`,
      })
    }
    const reported = calls.filter((c) => String(c.conflict.id) === key)
    if (reported.length > 0) {
      out.push({
        invariant: 'e:no-conflict-on-private',
        message: `${key} (only ${owner} edits it): ${reported.length} conflict(s) reported although no one else wrote it: ${reported.map((c) => `${c.tab}.${c.instance} ${c.conflict.phase} ${c.conflict.resolution} local ${show(c.conflict.local)} vs server v${c.conflict.server?.version ?? 0} ${show(c.conflict.server?.value)}`).join('; ')}`,
      })
    }
  }
  return out
}

/**
 * (d) Every conflict announced once: per tab instance, no two `onConflict` calls for the same
 * key, server version and local value; per device the same, except `manual`, whose parked
 * conflicts are re-detected (and must be re-announced) by a new instance after a reload. The
 * resolution fits the strategy, and every live tab's `state.sync.conflicts` lists exactly what
 * that instance announced.
 */
export function checkConflicts(world: World, s: Snapshot): Violation[] {
  const out: Violation[] = []
  const calls = world.instances.flatMap((t) => t.conflicts)
  const identity = (c: ConflictCall): string => JSON.stringify([c.conflict.key, c.conflict.server?.version ?? 0, c.conflict.local, c.conflict.localDeleted])
  const manual = world.strategy === 'manual'
  const groups = new Map<string, ConflictCall[]>()
  for (const call of calls) {
    const scope = manual ? `${call.tab}.${call.instance}` : call.device
    const id = `${scope} ${identity(call)}`
    groups.set(id, [...(groups.get(id) ?? []), call])
  }
  for (const group of groups.values()) {
    if (group.length < 2) continue
    const c = group[0]!.conflict
    out.push({
      invariant: 'd:conflict-once',
      message: `${c.key}: the conflict (local ${show(c.local)} vs server v${c.server?.version ?? 0} ${show(c.server?.value)}) was announced ${group.length} times: ${group.map((g) => `${g.tab}.${g.instance} ${g.conflict.phase}/${g.conflict.resolution}`).join(', ')}`,
    })
  }
  const expected: Partial<Record<string, readonly string[]>> = {
    'server-wins': ['server'],
    'client-wins': ['client'],
    'last-write-wins': ['server', 'client'],
    manual: ['pending'],
  }
  const allowed = typeof world.strategy === 'string' ? expected[world.strategy] : undefined
  for (const call of calls) {
    if (allowed && !allowed.includes(call.conflict.resolution)) {
      out.push({
        invariant: 'd:resolution-fits-strategy',
        message: `${call.conflict.key}: ${call.tab} announced resolution '${call.conflict.resolution}' under ${String(world.strategy)}`,
      })
    }
  }
  for (const tab of s.tabs) {
    const instance = world.instances.find((t) => t.name === tab.name && t.instance === tab.instance)
    if (!instance) continue
    // The same conflicts, key by key. An open (manual) conflict follows newer server versions
    // while the app decides, so the version the state lists may be newer than the announced one,
    // never older.
    const versionsByKey = (list: ReadonlyArray<{ key: string; version: number }>): Map<string, number[]> => {
      const map = new Map<string, number[]>()
      for (const { key, version } of list)
        map.set(
          key,
          [...(map.get(key) ?? []), version].sort((a, b) => a - b),
        )
      return map
    }
    const announcedBy = versionsByKey(instance.conflicts.map((c) => ({ key: c.conflict.key, version: c.conflict.server?.version ?? 0 })))
    const listedBy = versionsByKey(tab.conflicts.map((c) => ({ key: c.key, version: c.server?.version ?? 0 })))
    const matches =
      [...announcedBy.keys()].sort().join() === [...listedBy.keys()].sort().join() &&
      [...announcedBy].every(([key, versions]) => {
        const listedVersions = listedBy.get(key) ?? []
        return listedVersions.length === versions.length && versions.every((v, i) => listedVersions[i]! >= v)
      })
    const announced = instance.conflicts.map((c) => `${c.conflict.key}@v${c.conflict.server?.version ?? 0}`).sort()
    const listed = tab.conflicts.map((c) => `${c.key}@v${c.server?.version ?? 0}`).sort()
    if (announced.length <= 50 && !matches) {
      out.push({
        invariant: 'd:state-matches-announcements',
        message: `${tab.name}: onConflict announced [${announced.join(', ')}] but state.sync.conflicts lists [${listed.join(', ')}]`,
      })
    }
  }
  return out
}

/** (g) A disposed instance writes nothing: no write started after `dispose()` resolved, none still in flight then. */
export function checkNoWriteAfterDispose(world: World): Violation[] {
  return world.instances.flatMap((tab) =>
    tab.storage.control.writesAfterSeal.map((w) => ({
      invariant: 'g:no-write-after-dispose' as const,
      message: `${tab.name}.${tab.instance}: ${w.method}(${w.detail}) ${w.when === 'after-seal' ? 'called after dispose() resolved' : 'still in flight when dispose() resolved'}`,
    })),
  )
}
