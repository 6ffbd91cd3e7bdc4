import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test } from 'vitest'
import { configureAutoSync, createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, type InvalidOptionError } from '../../src'
import { createRemote } from '../../src/remote'
import { filesSlice } from '../support/store'

// Plain-JS callers get no compile-time check: a misspelt key must not be ignored silently.
const make = (options: Record<string, unknown>) => () =>
  createPersistenceMiddleware({ slices: { files: {} }, indexedDB: new IDBFactory(), ...options } as never)
const remote = (options: Record<string, unknown>) => () => createRemote(options as never)

const thrown = (run: () => unknown): InvalidOptionError => {
  try {
    run()
  } catch (error) {
    return error as InvalidOptionError
  }
  throw new Error('did not throw')
}

describe('unknown option keys are refused with the closest valid one', () => {
  test.each([
    ['createPersistenceMiddleware: dbname', make({ dbname: 'app' }), 'dbname', 'unknown option dbname; did you mean dbName?'],
    ['createPersistenceMiddleware: onerror', make({ onerror: () => {} }), 'onerror', 'did you mean onError?'],
    ['per slice: debounce', make({ slices: { files: { debounce: 300 } } }), 'slices.files.debounce', 'unknown option debounce; did you mean debounceMs?'],
    ['per slice: storename', make({ slices: { files: { storename: 'f' } } }), 'slices.files.storename', 'did you mean storeName?'],
    ['retry: initialDelay', make({ retry: { initialDelay: 5 } }), 'retry.initialDelay', 'did you mean initialDelayMs?'],
    ['remote: baseURL', remote({ baseURL: 'http://x/api' }), 'remote.baseURL', 'did you mean baseUrl?'],
    ['remote: timeout', remote({ baseUrl: 'http://x/api', timeout: 5 }), 'remote.timeout', 'did you mean timeoutMs?'],
    ['remote.paths: heath', remote({ baseUrl: 'http://x/api', paths: { heath: '/h' } }), 'remote.paths.heath', 'did you mean health?'],
    ['remote.retry: maxDelay', remote({ baseUrl: 'http://x/api', retry: { maxDelay: 5 } }), 'remote.retry.maxDelay', 'did you mean maxDelayMs?'],
    [
      'auto-sync: interval',
      () => createAutoSyncMiddleware({ interval: 1000 } as never),
      'options.interval',
      'unknown option interval; did you mean intervalMs?',
    ],
    ['auto-sync: syncOnChanges', () => createAutoSyncMiddleware({ syncOnChanges: true } as never), 'options.syncOnChanges', 'did you mean syncOnChange?'],
    [
      'monitor: onListenerErorr',
      () => createSyncMonitorMiddleware({ onListenerErorr: () => {} } as never),
      'options.onListenerErorr',
      'did you mean onListenerError?',
    ],
    ['a key like nothing valid', make({ colour: 'red' }), 'colour', 'valid options: slices, dbName'],
  ])('%s', (_name, run, option, message) => {
    const error = thrown(run)
    expect(error).toMatchObject({ name: 'InvalidOptionError', option })
    expect(error.message).toContain(message)
  })

  test('runtime calls: configure(slice, { debounce }) and configureAutoSync({ interval })', async () => {
    const persistence = createPersistenceMiddleware({ slices: { files: {} }, indexedDB: new IDBFactory(), onError: () => {} })
    const autoSync = createAutoSyncMiddleware({ leader: 'never', channel: null })
    configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence, autoSync),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    expect(thrown(() => persistence.configure('files', { debounce: 5 } as never)).message).toContain('unknown option debounce; did you mean debounceMs?')
    // A real slice option that is fixed at creation says so instead.
    expect(thrown(() => persistence.configure('files', { storeName: 'x' } as never)).message).toContain('cannot change after the instance is created')
    expect(thrown(() => configureAutoSync({ interval: 5 } as never))).toMatchObject({ option: 'configureAutoSync.interval' })
    autoSync.dispose()
    await persistence.dispose()
  })

  test('the documented options are all accepted', () => {
    expect(() =>
      createPersistenceMiddleware({
        slices: {
          files: {
            storeName: 'f',
            enabled: true,
            syncToFlask: true,
            debounceMs: 1,
            batchSize: 1,
            path: [],
            shape: 'auto',
            version: 1,
            idType: 'auto',
            verifyChangedIds: false,
          },
        },
        dbName: 'all',
        openTimeoutMs: 100,
        retry: { initialDelayMs: 1, maxDelayMs: 2 },
        maxDepth: 10,
        durability: 'default',
        indexedDB: new IDBFactory(),
        logoutChannel: null,
        remote: createRemote({
          baseUrl: 'http://x/api',
          paths: { health: '/h' },
          timeoutMs: 5,
          batchSize: 1,
          pullPageSize: 1,
          retry: { initialDelayMs: 1 },
          clientId: 'c',
          connectOnStart: false,
        }),
      }).dispose(),
    ).not.toThrow()
  })
})
