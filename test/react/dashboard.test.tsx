// @vitest-environment jsdom
import { configureStore, type Middleware, type UnknownAction } from '@reduxjs/toolkit'
import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import type { ReactNode } from 'react'
import { Provider } from 'react-redux'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, syncActions, syncReducer, type SyncConflict } from '../../src'
import { createRemote } from '../../src/remote'
import { PersistenceDashboard, PersistenceProvider, usePersistence } from '../../src/react'
import { createMockSyncServer } from '../../src/testing'
import { advance, useFakeClock } from '../support/clock'
import { readStore } from '../support/instrumentedStore'
import { addItem, filesSlice } from '../support/store'

const BASE = 'http://react.test/api'
const server = createMockSyncServer({ baseUrl: BASE })
const msw = setupServer(...server.handlers)
const cleanups: Array<() => unknown> = []
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterEach(async () => {
  vi.useRealTimers()
  cleanup()
  for (const c of cleanups.splice(0).reverse()) await c()
  server.reset()
})
afterAll(() => msw.close())

function app(options: { debounceMs?: number } = {}) {
  const factory = new IDBFactory()
  const seen: UnknownAction[] = []
  const recorder: Middleware = () => (next) => (action) => {
    seen.push(action as UnknownAction)
    return next(action)
  }
  const persistence = createPersistenceMiddleware({
    indexedDB: factory,
    slices: { files: { debounceMs: options.debounceMs ?? 5 } },
    onError: () => {},
    remote: createRemote({ baseUrl: BASE, retry: { initialDelayMs: 20, maxDelayMs: 50 } }),
  })
  const monitor = createSyncMonitorMiddleware({ default: false })
  const autoSync = createAutoSyncMiddleware({ leader: 'always', intervalMs: 30_000, default: false, onError: () => {} })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, monitor, autoSync, recorder),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => monitor.dispose(),
    () => autoSync.dispose(),
  )
  const wrapper = ({ children }: { children?: ReactNode }) => (
    <Provider store={store}>
      <PersistenceProvider persistence={persistence} monitor={monitor} autoSync={autoSync}>
        {children}
      </PersistenceProvider>
    </Provider>
  )
  return { store, persistence, monitor, autoSync, factory, wrapper, seen }
}

describe('usePersistence', () => {
  test('returns exactly the seed’s shape, typed, with working controls', async () => {
    const { wrapper, persistence, factory, store } = app()
    await persistence.whenHydrated()
    const { result } = renderHook(() => usePersistence(), { wrapper })
    expect(Object.keys(result.current).sort()).toEqual(
      ['autoSyncStatus', 'configure', 'configureAutoSync', 'disable', 'enable', 'flush', 'metrics', 'resetMetrics', 'status', 'syncNow'].sort(),
    )
    expect(Object.keys(result.current.status).sort()).toEqual(['enabled', 'error', 'flaskConnected', 'lastSyncTime', 'syncStatus'])
    expect(Object.keys(result.current.autoSyncStatus).sort()).toEqual(['changeCounter', 'enabled', 'lastSyncTime', 'nextSyncIn'])
    act(() => {
      store.dispatch(addItem({ id: 'a', name: 'A' }))
    })
    await act(() => result.current.flush())
    expect((await readStore(factory, 'files')).has('a')).toBe(true)
    await act(() => result.current.syncNow())
    expect(server.model.records().map((r) => r.id)).toEqual(['a'])
    await waitFor(() => expect(result.current.metrics.totalOperations).toBeGreaterThan(0))
    act(() => result.current.resetMetrics())
    await waitFor(() => expect(result.current.metrics.totalOperations).toBe(0))
    act(() => result.current.configureAutoSync({ enabled: false }))
    await waitFor(() => expect(result.current.autoSyncStatus.enabled).toBe(false))
    act(() => result.current.disable('files'))
    expect(persistence.getStatus().slices.files?.enabled).toBe(false)
  })

  test('nextSyncIn counts down live', async () => {
    useFakeClock() // the hook re-reads the countdown on a 1 s interval
    const { wrapper, persistence } = app()
    await persistence.whenHydrated()
    const { result } = renderHook(() => usePersistence(), { wrapper })
    await act(() => advance(50))
    expect(result.current.autoSyncStatus.nextSyncIn).not.toBeNull()
    const first = result.current.autoSyncStatus.nextSyncIn!
    await act(() => advance(1_500))
    expect(result.current.autoSyncStatus.nextSyncIn!).toBeLessThan(first - 500)
  })
})

describe('<PersistenceDashboard>', () => {
  test('shows connection, metrics, chart, depths and controls, with accessible names', async () => {
    const { wrapper, persistence, store, autoSync } = app()
    await persistence.whenHydrated()
    render(<PersistenceDashboard />, { wrapper })
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toMatch(/Connected/))
    expect(screen.getByRole('region', { name: 'Persistence' })).toBeTruthy()
    for (const name of ['Push', 'Pull', 'Flush', 'Sync now']) expect(screen.getByRole('button', { name })).toBeTruthy()
    expect(screen.getByLabelText('Enabled')).toBeTruthy()
    expect(screen.getByLabelText('Interval (s)')).toBeTruthy()
    fireEvent.click(screen.getByLabelText('Sync on change'))
    expect(autoSync.getAutoSyncConfig().syncOnChange).toBe(false)
    fireEvent.change(screen.getByLabelText('Max queue'), { target: { value: '7' } })
    expect(autoSync.getAutoSyncConfig().maxQueueSize).toBe(7)
    fireEvent.change(screen.getByLabelText('Interval (s)'), { target: { value: '12' } })
    expect(autoSync.getAutoSyncConfig().intervalMs).toBe(12_000)
    act(() => {
      store.dispatch(addItem({ id: 'a', name: 'A' }))
    })
    fireEvent.click(screen.getByRole('button', { name: 'Sync now' }))
    await waitFor(() => expect(server.model.records()).toHaveLength(1))
    await waitFor(() => expect(screen.getByTestId('success-rate').textContent).toMatch(/%/))
    expect(screen.getByRole('img', { name: /Durations of the last \d+ operations/ })).toBeTruthy()
    // The records reach the server before the ack is committed and the outbox depth re-rendered.
    await waitFor(() => expect(screen.getByTestId('outbox-depth').textContent).toBe('0'))
  })

  test('offline is said in words, not only colour; a progress bar shows bulk syncs; errors become toasts', async () => {
    const { wrapper, persistence, store } = app()
    await persistence.whenHydrated()
    render(<PersistenceDashboard />, { wrapper })
    act(() => {
      store.dispatch(syncActions.connectionChanged({ connected: false }))
      store.dispatch(syncActions.progressChanged({ operation: 'pull', done: 3, total: 10 }))
      store.dispatch(syncActions.syncActivity({ phase: 'error', error: 'the server said no' }))
    })
    // Redrawn within refreshMs (100 ms by default), with the newest state.
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toMatch(/Offline — local-only mode/))
    const bar = await screen.findByRole('progressbar', { name: 'Bulk pull' })
    expect(bar.getAttribute('aria-valuenow')).toBe('3')
    expect(bar.getAttribute('aria-valuemax')).toBe('10')
    await waitFor(() => expect(screen.getByRole('alert').textContent).toMatch(/the server said no/))
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss notification' }))
    expect(screen.queryByRole('alert')).toBeNull()
  })

  test('a manual conflict is resolved from the list: keep mine, keep the server’s, or merge', async () => {
    const { wrapper, persistence, store, seen } = app()
    await persistence.whenHydrated()
    const conflict: SyncConflict = {
      key: 'files:x',
      slice: 'files',
      id: 'x',
      phase: 'push',
      strategy: 'manual',
      local: { id: 'x', name: 'mine' },
      localDeleted: false,
      localTime: 2,
      server: { value: { id: 'x', name: 'theirs', extra: 1 }, version: 4, deleted: false, updatedAt: 1, clientTime: 1 },
      detectedAt: 3,
      resolution: 'pending',
    }
    render(<PersistenceDashboard />, { wrapper })
    act(() => {
      store.dispatch(syncActions.conflictChanged(conflict))
    })
    const list = await screen.findByRole('list', { name: 'Conflicts' })
    expect(list.textContent).toMatch(/mine/)
    expect(list.textContent).toMatch(/theirs/)
    fireEvent.click(screen.getByRole('button', { name: 'Keep mine' }))
    fireEvent.click(screen.getByRole('button', { name: 'Keep server’s' }))
    fireEvent.click(screen.getByRole('button', { name: 'Merge…' }))
    const editor = screen.getByLabelText('Merged version (JSON)') as HTMLTextAreaElement
    expect(JSON.parse(editor.value)).toEqual({ id: 'x', name: 'mine', extra: 1 })
    fireEvent.change(editor, { target: { value: '{"id":"x","name":"both"}' } })
    fireEvent.click(screen.getByRole('button', { name: 'Save merge' }))
    const resolutions = seen.filter((a) => a.type === 'redux-idb-sync/resolveConflict').map((a) => a.payload)
    expect(resolutions).toEqual([
      { key: 'files:x', resolution: 'local' },
      { key: 'files:x', resolution: 'server' },
      { key: 'files:x', resolution: 'merged', value: { id: 'x', name: 'both' } },
    ])
  })

  test('lists rejected changes with their reasons, and offers try again and discard', async () => {
    const { wrapper, persistence, store, seen } = app()
    await persistence.whenHydrated()
    render(<PersistenceDashboard />, { wrapper })
    expect(screen.queryByRole('list', { name: 'Rejected changes' })).toBeNull()
    act(() => {
      store.dispatch(
        syncActions.deadLettersChanged([
          {
            opId: 'op-1',
            key: 'files:x',
            slice: 'files',
            id: 'x',
            type: 'put',
            status: null,
            code: 'validation',
            message: 'name must not be empty',
            at: 1,
            rolledBack: true,
          },
        ]),
      )
    })
    const list = await screen.findByRole('list', { name: 'Rejected changes' })
    expect(list.textContent).toContain('files:x')
    expect(list.textContent).toContain('name must not be empty')
    expect(list.textContent).toContain('Rolled back to the server’s value.')
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }))
    fireEvent.click(screen.getByRole('button', { name: 'Discard' }))
    expect(
      seen.filter((a) => a.type === 'redux-idb-sync/retryDeadLetter' || a.type === 'redux-idb-sync/discardDeadLetter').map((a) => [a.type, a.payload]),
    ).toEqual([
      ['redux-idb-sync/retryDeadLetter', { opId: 'op-1' }],
      ['redux-idb-sync/discardDeadLetter', { opId: 'op-1' }],
    ])
  })

  test('redraws at most once per refreshMs, with the newest state; refreshMs 0 redraws at once', async () => {
    const { wrapper, persistence, store } = app()
    await persistence.whenHydrated()
    const depth = () => screen.getByTestId('outbox-depth').textContent
    const { unmount } = render(<PersistenceDashboard refreshMs={500} />, { wrapper })
    await waitFor(() => expect(depth()).toBe('0'))
    act(() => {
      store.dispatch(syncActions.outboxChanged(1))
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(depth()).toBe('0') // within the wait: not redrawn yet
    act(() => {
      store.dispatch(syncActions.outboxChanged(2))
    })
    await waitFor(() => expect(depth()).toBe('2'), { timeout: 2000 }) // the newest, in one redraw
    unmount()
    render(<PersistenceDashboard refreshMs={0} />, { wrapper })
    act(() => {
      store.dispatch(syncActions.outboxChanged(3))
    })
    await waitFor(() => expect(depth()).toBe('3'), { timeout: 40 })
  })

  test('its styles are scoped: every rule starts with .ris-dashboard', async () => {
    const { wrapper, persistence } = app()
    await persistence.whenHydrated()
    const { container } = render(<PersistenceDashboard className="my-theme" />, { wrapper })
    const css = container.querySelector('style')!.textContent!
    const selectors = css
      .replace(/\{[^}]*\}/g, '\n')
      .split('\n')
      .flatMap((line) => line.split(','))
      .map((s) => s.trim())
      .filter(Boolean)
    expect(selectors.length).toBeGreaterThan(10)
    expect(selectors.every((s) => s.startsWith('.ris-dashboard'))).toBe(true)
    expect(container.querySelector('section')!.className).toBe('ris-dashboard my-theme')
  })
})

describe('flush on unmount and page hide', () => {
  test('the provider flushes when it unmounts and when the page is hidden', async () => {
    const { wrapper, persistence, store, factory } = app({ debounceMs: 60_000 })
    await persistence.whenHydrated()
    const view = render(<div />, { wrapper })
    act(() => {
      store.dispatch(addItem({ id: 'hidden', name: 'h' }))
    })
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })
    act(() => {
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await waitFor(async () => expect((await readStore(factory, 'files')).has('hidden')).toBe(true))
    act(() => {
      store.dispatch(addItem({ id: 'unmounted', name: 'u' }))
    })
    view.unmount()
    await waitFor(async () => expect((await readStore(factory, 'files')).has('unmounted')).toBe(true))
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' })
  })
})
