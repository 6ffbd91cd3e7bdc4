import { build } from 'esbuild'
import { IDBFactory } from 'fake-indexeddb'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import { createPersistenceMiddleware, isInvalidOptionError, type PersistenceMiddleware } from '../../src'
import { createRemote } from '../../src/remote'

const live: PersistenceMiddleware[] = []
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

const instance = (remote: unknown): PersistenceMiddleware => {
  const persistence = createPersistenceMiddleware({ slices: { files: {} }, indexedDB: new IDBFactory(), onError: () => {}, remote } as never)
  live.push(persistence)
  return persistence
}

const thrown = (run: () => unknown): unknown => {
  try {
    run()
  } catch (error) {
    return error
  }
  throw new Error('did not throw')
}

describe('remote: createRemote from redux-idb-sync/remote', () => {
  test('a plain options object (the 0.1 API) is refused at creation, naming `remote` and createRemote', () => {
    const error = thrown(() => instance({ baseUrl: 'http://sync.test/api' }))
    expect(isInvalidOptionError(error)).toBe(true)
    expect(error).toMatchObject({ name: 'InvalidOptionError', option: 'remote' })
    expect((error as Error).message).toContain("createRemote({ baseUrl, ... }) from 'redux-idb-sync/remote'")
  })

  test.each([
    ['an object that only looks like one', { kind: 'redux-idb-sync/remote', options: {} }],
    ['a string', 'http://sync.test/api'],
    ['null', null],
  ])('%s is refused too', (_name, value) => {
    expect(thrown(() => instance(value))).toMatchObject({ name: 'InvalidOptionError', option: 'remote' })
  })

  test('its options are checked when it is created, before any store exists', () => {
    expect(thrown(() => createRemote({ baseUrl: 'sync.test/api' }))).toMatchObject({ option: 'remote.baseUrl' })
    expect(thrown(() => createRemote({ baseUrl: 'http://sync.test/api', batchSize: 0 }))).toMatchObject({ option: 'remote.batchSize' })
    expect(thrown(() => createRemote({ baseUrl: 'http://sync.test/api', realtime: 'http://not-a-socket' }))).toMatchObject({ option: 'remote.realtime.url' })
    expect(thrown(() => createRemote(undefined as never))).toMatchObject({ option: 'remote' })
  })

  test('it carries its options with the defaults filled in; without a clientId, each instance draws its own', () => {
    const remote = createRemote({ baseUrl: 'http://sync.test/api', connectOnStart: false })
    expect(remote.kind).toBe('redux-idb-sync/remote')
    expect(remote.options).toMatchObject({ batchSize: 100, pullPageSize: 500, retry: { initialDelayMs: 1000, maxDelayMs: 60_000 }, realtimeChannel: null })
    expect(remote.options.now).toBe(Date.now)
    expect(remote.options.clientId).toBeUndefined()
  })

  test('one remote given to two instances builds one engine for each', () => {
    const remote = createRemote({ baseUrl: 'http://sync.test/api', connectOnStart: false })
    const a = instance(remote)
    const b = instance(remote)
    expect(a.sync).not.toBeNull()
    expect(b.sync).not.toBeNull()
    expect(a.sync).not.toBe(b.sync)
  })

  test('without a remote the instance is local-only', () => {
    expect(instance(undefined).sync).toBeNull()
  })
})

describe('the core entry leaves the sync engine out', () => {
  const src = fileURLToPath(new URL('../../src/index.ts', import.meta.url))
  /** The modules a bundler keeps for `export <what> from 'redux-idb-sync'` (from src/, as the package is built). */
  async function bundled(what: string): Promise<string[]> {
    const result = await build({
      stdin: { contents: `export ${what} from ${JSON.stringify(src)}`, resolveDir: process.cwd(), loader: 'ts' },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
      external: ['@reduxjs/toolkit', 'immer'],
    })
    return Object.values(result.metafile.outputs).flatMap((output) => Object.keys(output.inputs).filter((input) => output.inputs[input]!.bytesInOutput > 0))
  }
  const engine = (inputs: string[]): string[] => inputs.filter((input) => /node_modules\/ky\/|src\/remote\/(?!redux\/)/.test(input))

  test('createPersistenceMiddleware alone bundles no ky and no engine, and no sync slice either', async () => {
    const inputs = await bundled('{ createPersistenceMiddleware }')
    expect(inputs.some((input) => input.includes('src/persistence/createPersistenceMiddleware.ts'))).toBe(true)
    expect(engine(inputs)).toEqual([])
    expect(inputs.filter((input) => input.includes('src/remote/redux/'))).toEqual([])
  })

  test('everything the core entry exports bundles no ky and no engine', async () => {
    expect(engine(await bundled('*'))).toEqual([])
  })
})
