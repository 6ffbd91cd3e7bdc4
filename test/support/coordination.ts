import type { ChannelLike, LockManagerLike } from '../../src'

/** An in-memory Web Locks manager: exclusive, FIFO, released when the holder's promise settles. */
export function memoryLocks(): LockManagerLike & { holder(name: string): number | null } {
  const queues = new Map<string, Array<{ id: number; run: () => void; aborted: boolean }>>()
  const held = new Map<string, number>()
  let next = 0
  const pump = (name: string): void => {
    if (held.has(name)) return
    const queue = queues.get(name) ?? []
    let waiter = queue.shift()
    while (waiter?.aborted) waiter = queue.shift()
    if (waiter) waiter.run()
  }
  return {
    request(name, options, callback) {
      return new Promise((resolve, reject) => {
        const id = ++next
        const waiter = {
          id,
          aborted: false,
          run: () => {
            held.set(name, id)
            Promise.resolve(callback({ name }))
              .then(resolve, reject)
              .finally(() => {
                held.delete(name)
                pump(name)
              })
          },
        }
        options.signal?.addEventListener('abort', () => {
          waiter.aborted = true
          reject(new DOMException('aborted', 'AbortError'))
        })
        const queue = queues.get(name) ?? []
        queue.push(waiter)
        queues.set(name, queue)
        pump(name)
      })
    },
    holder: (name) => held.get(name) ?? null,
  }
}

/** A BroadcastChannel stand-in: every channel made by one hub hears the others, never itself. */
export function channelHub() {
  const channels = new Set<{ listeners: Set<(event: { data: unknown }) => void> }>()
  return {
    create(): ChannelLike {
      const self = { listeners: new Set<(event: { data: unknown }) => void>() }
      channels.add(self)
      return {
        postMessage(message) {
          const data = structuredClone(message)
          for (const other of channels) if (other !== self) for (const l of other.listeners) queueMicrotask(() => l({ data }))
        },
        addEventListener: (_type, listener) => self.listeners.add(listener),
        removeEventListener: (_type, listener) => self.listeners.delete(listener),
        close: () => channels.delete(self),
      }
    },
  }
}
