/**
 * The one listener fan-out of the library: a synchronous emitter whose listeners can never break
 * the emitter or each other. A listener that throws is passed to `onListenerError` and the others
 * still run; each emit calls the listeners subscribed when it began.
 */
export interface Emitter<E> {
  emit(event: E): void
  /** Returns an unsubscribe function. */
  subscribe(listener: (event: E) => void): () => void
  /** Drops every listener. */
  clear(): void
  readonly size: number
}

export function createEmitter<E>(onListenerError?: (error: unknown) => void): Emitter<E> {
  const listeners = new Set<(event: E) => void>()
  return {
    emit(event) {
      for (const listener of [...listeners]) {
        try {
          listener(event)
        } catch (error) {
          onListenerError?.(error)
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    clear() {
      listeners.clear()
    },
    get size() {
      return listeners.size
    },
  }
}
