// @vitest-environment jsdom
import { configureStore } from '@reduxjs/toolkit'
import { act, cleanup, render, screen } from '@testing-library/react'
import { IDBFactory } from 'fake-indexeddb'
import { Profiler } from 'react'
import { Provider } from 'react-redux'
import { afterEach, describe, expect, test } from 'vitest'
import { createPersistenceMiddleware, syncActions, syncReducer } from '../../src'
import { PersistenceProvider, useItemSyncState, useSliceSyncCounts } from '../../src/react'
import { addItem, filesSlice } from '../support/store'

const disposers: Array<() => Promise<void>> = []
afterEach(async () => {
  cleanup()
  for (const dispose of disposers.splice(0)) await dispose()
})

function setup() {
  const persistence = createPersistenceMiddleware({ indexedDB: new IDBFactory(), slices: { files: { debounceMs: 5 } }, onError: () => {} })
  disposers.push(() => persistence.dispose())
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence }
}

function Badge({ id }: { id: string }) {
  const state = useItemSyncState('files', id)
  return <span data-testid={`badge-${id}`}>{state}</span>
}

function Counts() {
  const counts = useSliceSyncCounts('files')
  return <span data-testid="counts">{`${counts.pending}/${counts.conflict}/${counts.rejected}`}</span>
}

describe('useItemSyncState', () => {
  test("renders only when that item's state changes", () => {
    const { store, persistence } = setup()
    const renders: Record<string, number> = { a: 0, b: 0 }
    const count = (id: string) => () => void (renders[id] = (renders[id] ?? 0) + 1)
    render(
      <Provider store={store}>
        <PersistenceProvider persistence={persistence} flushOnHide={false}>
          <Profiler id="a" onRender={count('a')}>
            <Badge id="a" />
          </Profiler>
          <Profiler id="b" onRender={count('b')}>
            <Badge id="b" />
          </Profiler>
          <Counts />
        </PersistenceProvider>
      </Provider>,
    )
    expect(screen.getByTestId('badge-a').textContent).toBe('synced')
    const initial = { ...renders }
    // Another item's state changes, other items are added: "a" does not render.
    act(() => void store.dispatch(syncActions.itemStatesChanged([{ key: 'files:b', slice: 'files', state: 'pending' }])))
    act(() => void store.dispatch(addItem({ id: 'c', name: 'C' })))
    act(() => void store.dispatch(syncActions.itemStatesChanged([{ key: 'files:b', slice: 'files', state: 'rejected' }])))
    expect(renders.a).toBe(initial.a)
    expect(renders.b).toBe(initial.b! + 2)
    expect(screen.getByTestId('badge-b').textContent).toBe('rejected')
    expect(screen.getByTestId('counts').textContent).toBe('0/0/1')
    // Its own state changes: it renders once per change.
    act(() => {
      store.dispatch(syncActions.itemStatesChanged([{ key: 'files:a', slice: 'files', state: 'pending' }]))
    })
    expect(renders.a).toBe(initial.a! + 1)
    expect(screen.getByTestId('badge-a').textContent).toBe('pending')
    act(() => {
      store.dispatch(syncActions.itemStatesChanged([{ key: 'files:a', slice: 'files', state: 'synced' }]))
    })
    expect(renders.a).toBe(initial.a! + 2)
    expect(screen.getByTestId('badge-a').textContent).toBe('synced')
    expect(screen.getByTestId('counts').textContent).toBe('0/0/1')
  })
})
