import type { ChangeSet } from '../core/events'
import type { ChannelLike } from '../core/ports'
import { unref } from '../utils/unref'

/** What a tab posts after a batch committed, so the other tabs' stores update without writing back. */
interface CommittedMessage {
  readonly type: 'redux-idb-sync/committed'
  readonly from: string
  readonly changes: readonly ChangeSet[]
}

/** Carries committed change sets between the tabs sharing one database. */
export interface ChangeRelay {
  /** Posts this tab's committed changes (throws what the channel throws). */
  post(changes: readonly ChangeSet[]): void
  /** Stops listening; closes the channel only when it was made here. */
  close(): void
}

/**
 * The relay of `dbName`: the app's `channel`, or (when `channel` is undefined and the database is
 * the page's shared one) a BroadcastChannel named `redux-idb-sync:<dbName>`. Messages from this
 * tab itself are ignored. `null` when there is no channel.
 */
export function createChangeRelay(options: {
  dbName: string
  channel: ChannelLike | null | undefined
  sharedDatabase: boolean
  onChanges: (changes: readonly ChangeSet[]) => void
}): ChangeRelay | null {
  const owned = options.channel === undefined
  const channel: ChannelLike | null = !owned
    ? (options.channel ?? null)
    : typeof BroadcastChannel === 'function' && options.sharedDatabase
      ? (unref(new BroadcastChannel(`redux-idb-sync:${options.dbName}`)) as unknown as ChannelLike)
      : null
  if (!channel) return null
  const tabId = Math.random().toString(36).slice(2)
  const onMessage = (event: { data: unknown }): void => {
    const data = event.data as Partial<CommittedMessage> | null
    if (!data || data.type !== 'redux-idb-sync/committed' || data.from === tabId || !Array.isArray(data.changes)) return
    options.onChanges(data.changes)
  }
  channel.addEventListener('message', onMessage)
  return {
    post(changes) {
      channel.postMessage({ type: 'redux-idb-sync/committed', from: tabId, changes } satisfies CommittedMessage)
    },
    close() {
      channel.removeEventListener('message', onMessage)
      if (owned) channel.close()
    },
  }
}
