import { configureStore, type Middleware } from '@reduxjs/toolkit'
import { describe, expect, test, vi } from 'vitest'
import { getPersistenceInstance } from '../../src/core/actions'
import { companionMiddleware } from '../../src/persistence/companion'
import type { PersistenceMiddleware } from '../../src'

/** Stands in for the persistence middleware: answers getPersistenceInstance with `instance`. */
function answering(instance: unknown): Middleware {
  return () => (next) => (action) => (getPersistenceInstance.match(action) ? instance : next(action))
}

const instance = { subscribeEvents: () => () => {} } as unknown as PersistenceMiddleware

/** A companion wired into a real store, with what it found. */
function storeWith(order: 'companion first' | 'persistence first', options: { answer?: unknown; disposed?: () => boolean } = {}) {
  const found: PersistenceMiddleware[] = []
  const seen: string[] = []
  const recorder: Middleware = () => (next) => (action) => {
    seen.push((action as { type: string }).type)
    return next(action)
  }
  const companion = companionMiddleware((p) => found.push(p), options.disposed ?? (() => false))
  const persistence = answering('answer' in options ? options.answer : instance)
  const store = configureStore({
    reducer: (state: number = 0) => state,
    middleware: (g) => g().concat(recorder, ...(order === 'companion first' ? [companion, persistence] : [persistence, companion])),
  })
  return { store, found, seen }
}

describe('companionMiddleware', () => {
  test.each(['companion first', 'persistence first'] as const)('%s: finds the instance in a microtask after the store is built, once', async (order) => {
    const { found } = storeWith(order)
    expect(found).toEqual([])
    await Promise.resolve()
    expect(found).toEqual([instance])
    await Promise.resolve()
    expect(found).toHaveLength(1)
  })

  test('an action dispatched before the microtask looks up first; the microtask then does nothing more', async () => {
    const { store, found, seen } = storeWith('companion first')
    store.dispatch({ type: 'app/first' })
    expect(found).toEqual([instance])
    await Promise.resolve()
    expect(found).toHaveLength(1)
    expect(seen.filter((type) => type === getPersistenceInstance.type)).toHaveLength(1)
    expect(seen).toContain('app/first')
  })

  test('two companions each find the instance once; one’s look-up does not make the other look up inside it', async () => {
    const found: string[] = []
    const lookUps: number[] = []
    let dispatching = 0
    const counter: Middleware = () => (next) => (action) => {
      if (getPersistenceInstance.match(action)) lookUps.push(dispatching)
      dispatching++
      try {
        return next(action)
      } finally {
        dispatching--
      }
    }
    configureStore({
      reducer: (state: number = 0) => state,
      middleware: (g) =>
        g().concat(
          counter,
          companionMiddleware(
            () => found.push('monitor'),
            () => false,
          ),
          companionMiddleware(
            () => found.push('autoSync'),
            () => false,
          ),
          answering(instance),
        ),
    })
    await Promise.resolve()
    expect(found.sort()).toEqual(['autoSync', 'monitor'])
    // Two look-ups, neither nested in another dispatch.
    expect(lookUps).toEqual([0, 0])
  })

  test('without a persistence middleware nothing is found (the dispatch just returns the action)', async () => {
    const found: PersistenceMiddleware[] = []
    configureStore({
      reducer: (state: number = 0) => state,
      middleware: (g) =>
        g().concat(
          companionMiddleware(
            (p) => found.push(p),
            () => false,
          ),
        ),
    })
    await Promise.resolve()
    expect(found).toEqual([])
  })

  test('an answer that is not an instance (no subscribeEvents) is ignored', async () => {
    const { found } = storeWith('companion first', { answer: { something: 'else' } })
    await Promise.resolve()
    expect(found).toEqual([])
  })

  test('a disposed companion does not look up at all', async () => {
    const { store, found, seen } = storeWith('companion first', { disposed: () => true })
    store.dispatch({ type: 'app/first' })
    await Promise.resolve()
    expect(found).toEqual([])
    expect(seen).not.toContain(getPersistenceInstance.type)
  })

  test('values that are not actions (a thunk reaching it raw) do not trigger the look-up, and pass through', () => {
    const dispatch = vi.fn(() => instance)
    const found: PersistenceMiddleware[] = []
    const next = vi.fn((action: unknown) => action)
    const handler = (
      companionMiddleware(
        (p) => found.push(p),
        () => false,
      ) as unknown as (api: { dispatch: typeof dispatch }) => (n: typeof next) => (a: unknown) => unknown
    )({ dispatch })(next)
    const thunk = () => 1
    expect(handler(thunk)).toBe(thunk)
    expect(dispatch).not.toHaveBeenCalled()
    expect(found).toEqual([])
  })
})
