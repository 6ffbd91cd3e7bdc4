import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test } from 'vitest'
import { createPersistenceMiddleware, isHydrationError, isInvalidOptionError, type PersistenceMiddleware, type SyncError } from '../../src'
import { filesSlice, saveFile } from '../support/store'

const live: PersistenceMiddleware[] = []
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose({ flush: false })
})

function create(slices: Parameters<typeof createPersistenceMiddleware>[0]['slices'], factory = new IDBFactory()) {
  const errors: SyncError[] = []
  const persistence = createPersistenceMiddleware({ slices, indexedDB: factory, onError: (e) => errors.push(e) })
  live.push(persistence)
  return { persistence, errors, factory }
}

describe('a configured slice that is not in the root state', () => {
  test('slices: { filez } with a files reducer: InvalidOptionError in onError, the status and whenHydrated()', async () => {
    const { persistence, errors } = create({ filez: {} })
    configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    const failure = await persistence.whenHydrated().catch((e: unknown) => e)
    expect(isInvalidOptionError(failure)).toBe(true)
    expect(failure).toMatchObject({ option: 'slices.filez' })
    expect((failure as Error).message).toMatch(/"filez" is not a key of the store's root state \(its keys: files\); did you mean files\?/)
    expect(errors).toEqual([failure])
    const status = persistence.getStatus()
    expect(status.slices.filez).toMatchObject({ hydration: 'error', error: { name: 'InvalidOptionError' } })
    expect(status.lastError).toMatchObject({ name: 'InvalidOptionError' })
  })

  test('the other slices of the instance hydrate and persist as usual', async () => {
    const factory = new IDBFactory()
    const { persistence, errors } = create({ files: {}, notez: {} }, factory)
    const store = configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await expect(persistence.whenHydrated()).rejects.toMatchObject({ name: 'InvalidOptionError', option: 'slices.notez' })
    store.dispatch(saveFile({ id: 'a', name: 'A' }))
    await persistence.flush()
    expect(persistence.getStatus().slices.files?.hydration).toBe('done')
    expect(errors).toHaveLength(1)
  })

  test('a disabled slice (to be injected later) is checked when it is enabled, not before', async () => {
    const { persistence, errors } = create({ files: {}, later: { enabled: false } })
    configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()
    expect(errors).toEqual([])
    persistence.enable('later')
    await expect(persistence.whenHydrated()).rejects.toMatchObject({ name: 'InvalidOptionError', option: 'slices.later' })
    expect(errors).toHaveLength(1)
  })
})

describe('a store without persistence.enhancer', () => {
  // Without the check, the first run (empty database) succeeded and the HydrationError only
  // appeared on the next run, logged twice.
  test.each([1, 2, 3])('run %i on the same database: one HydrationError naming persistence.enhancer, every run', async (runs) => {
    const factory = new IDBFactory()
    for (let run = 1; run <= runs; run++) {
      const { persistence, errors } = create({ files: {} }, factory)
      const store = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(persistence) })
      const failure = await persistence.whenHydrated().catch((e: unknown) => e)
      expect(isHydrationError(failure)).toBe(true)
      expect((failure as Error).message).toMatch(/persistence\.enhancer is missing/)
      store.dispatch(saveFile({ id: `r${run}`, name: 'A' }))
      await expect(persistence.flush()).rejects.toMatchObject({ name: 'FlushError', errors: [failure] })
      expect(errors).toEqual([failure])
      expect(persistence.getStatus().slices.files).toMatchObject({ hydration: 'error', error: { name: 'HydrationError' } })
      await persistence.dispose({ flush: false })
    }
  })
})
