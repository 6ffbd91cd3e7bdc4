import type { ChannelLike } from '../core/ports'
import { unref } from '../utils/unref'

/** What `clear()` posts on the logout channel. */
interface LogoutMessage {
  readonly type: 'logout'
  readonly dbName: string
}

/** Tells the other tabs sharing a database that it was cleared by a logout, and hears theirs. */
export interface LogoutBroadcast {
  /** Posts the logout (throws what the channel throws). */
  announce(): void
  /** Stops listening; closes the channel only when it was made here. */
  close(): void
}

/**
 * The logout channel of `dbName`: the app's `channel`, or (when `channel` is undefined and the
 * database is the page's shared one) a BroadcastChannel made here. A channel the app passed in
 * is the app's to close; one made here is ours. `null` when there is no channel.
 */
export function createLogoutBroadcast(options: {
  dbName: string
  channel: ChannelLike | null | undefined
  sharedDatabase: boolean
  onLogout: () => void
}): LogoutBroadcast | null {
  const { dbName, onLogout } = options
  const owned = options.channel === undefined
  const channel: ChannelLike | null = !owned
    ? (options.channel ?? null)
    : options.sharedDatabase && typeof BroadcastChannel === 'function'
      ? (unref(new BroadcastChannel(`redux-idb-sync:logout:${dbName}`)) as unknown as ChannelLike)
      : null
  if (!channel) return null
  const onMessage = (event: { data: unknown }): void => {
    const message = event.data as Partial<LogoutMessage> | null
    if (message?.type === 'logout' && message.dbName === dbName) onLogout()
  }
  channel.addEventListener('message', onMessage)
  return {
    announce() {
      channel.postMessage({ type: 'logout', dbName } satisfies LogoutMessage)
    },
    close() {
      channel.removeEventListener('message', onMessage)
      if (owned) channel.close()
    },
  }
}
