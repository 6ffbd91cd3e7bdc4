/** A minimal synchronous event emitter whose listeners can never break the emitter or each other. */
export interface Emitter<E> {
  emit(event: E): void
  /** Returns an unsubscribe function. */
  subscribe(listener: (event: E) => void): () => void
  readonly size: number
}

export function createEmitter<E>(onListenerError?: (error: unknown) => void): Emitter<E> {
  const listeners = new Set<(event: E) => void>()
  return {
    emit(event) {
      for (const listener of listeners) {
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
    get size() {
      return listeners.size
    },
  }
}
