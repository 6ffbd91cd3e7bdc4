// Server-side rendering: no DOM, no IndexedDB.
import { configureStore } from '@reduxjs/toolkit'
import { Provider } from 'react-redux'
import { renderToString } from 'react-dom/server'
import { expect, test } from 'vitest'
import { createPersistenceMiddleware, syncReducer } from '../../src'
import { PersistenceDashboard, PersistenceProvider } from '../../src/react'
import { filesSlice } from '../support/store'

test('the dashboard renders on the server', async () => {
  expect(typeof (globalThis as { document?: unknown }).document).toBe('undefined')
  const persistence = createPersistenceMiddleware({ slices: { files: {} }, onError: () => {} })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  const html = renderToString(
    <Provider store={store}>
      <PersistenceProvider persistence={persistence}>
        <PersistenceDashboard title="Sync" />
      </PersistenceProvider>
    </Provider>,
  )
  expect(html).toContain('Sync')
  expect(html).toContain('Offline — local-only mode')
  expect(html).toContain('class="ris-dashboard"')
  await persistence.dispose()
})
