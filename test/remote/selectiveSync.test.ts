import { http } from 'msw'
import { describe, expect, test } from 'vitest'
import { isInvalidOptionError, pullFlaskChanges, syncFromFlaskBulk, syncToFlaskBulk } from '../../src'
import { createApiClient } from '../../src/remote'
import { until } from '../support/instrumentedStore'
import { saveFile, type FileItem } from '../support/store'
import { BASE_URL, makeSyncedStore, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
const onServer = (id: string) => server.model.records().find((r) => r.id === id)?.value as FileItem | undefined

/** Another device writes `files/<id>` on the server. */
async function otherDevice(id: string, name: string): Promise<void> {
  await createApiClient({ baseUrl: BASE_URL }).push('other', [
    { opId: `other-${id}-${name}`, collection: 'files', id, type: 'put', value: { id, name }, baseVersion: null, clientTime: 1 },
  ])
}

/** The pull requests a client sent, by the collections they named. */
function pulls() {
  const collections: Array<string | null> = []
  const fetchImpl: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    if (url.pathname.endsWith('/sync/changes') || url.pathname.endsWith('/sync/pull')) collections.push(url.searchParams.get('collections'))
    return fetch(request)
  }
  return { collections, fetch: fetchImpl }
}

async function started(c: ReturnType<typeof client>) {
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
}

describe('syncDirection', () => {
  test("'pull-only': server changes arrive, local changes stay local", async () => {
    const c = client({ files: { syncDirection: 'pull-only' } })
    await started(c)
    c.store.dispatch(saveFile({ id: 'mine', name: 'local' }))
    await c.persistence.flush()
    await otherDevice('theirs', 'server')
    await c.store.dispatch(pullFlaskChanges())
    expect(c.store.getState().files.entities.theirs).toEqual({ id: 'theirs', name: 'server' })
    await c.store.dispatch(syncToFlaskBulk())
    expect(onServer('mine')).toBeUndefined()
    expect(c.store.getState().sync.outboxDepth).toBe(0)
  })

  test("'push-only': local changes are pushed, its collection is never pulled", async () => {
    const wire = pulls()
    const c = client({ files: { syncDirection: 'push-only' }, remote: { fetch: wire.fetch } })
    await started(c)
    c.store.dispatch(saveFile({ id: 'mine', name: 'local' }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'pushed')
    expect(onServer('mine')).toEqual({ id: 'mine', name: 'local' })
    await otherDevice('theirs', 'server')
    await c.store.dispatch(pullFlaskChanges())
    await c.store.dispatch(syncFromFlaskBulk())
    expect(c.store.getState().files.entities.theirs).toBeUndefined()
    expect(wire.collections.length).toBeGreaterThan(0)
    expect(wire.collections.every((names) => names !== null && !names.split(',').includes('files'))).toBe(true)
  })

  test('a bad value is refused by name', () => {
    let error: unknown
    try {
      makeSyncedStore({ files: { syncDirection: 'sideways' as never } })
    } catch (caught) {
      error = caught
    }
    expect(isInvalidOptionError(error)).toBe(true)
    expect(String(error)).toMatch(/slices\.files\.syncDirection/)
  })
})

describe('pushFilter', () => {
  const notDraft = (item: unknown) => !(item as FileItem).name.startsWith('draft:')

  test('filtered items stay local; once the filter lets them through they are pushed', async () => {
    const c = client({ files: { pushFilter: notDraft } })
    await started(c)
    c.store.dispatch(saveFile({ id: 'a', name: 'draft: secret plans' }))
    c.store.dispatch(saveFile({ id: 'b', name: 'published' }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0 && onServer('b') !== undefined, 'b pushed')
    await c.store.dispatch(syncToFlaskBulk())
    expect(onServer('a')).toBeUndefined()
    c.store.dispatch(saveFile({ id: 'a', name: 'plans' }))
    await c.persistence.flush()
    await until(() => onServer('a')?.name === 'plans', 'a pushed once published')
  })

  test('a filter that throws keeps the item local and reports the error', async () => {
    const c = client({
      files: {
        pushFilter: () => {
          throw new Error('filter bug')
        },
      },
    })
    await started(c)
    c.store.dispatch(saveFile({ id: 'a', name: 'x' }))
    await c.persistence.flush()
    await c.store.dispatch(syncToFlaskBulk())
    expect(onServer('a')).toBeUndefined()
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'x' })
    expect(c.errors.some((e) => /pushFilter of slice "files" threw/.test(e.message))).toBe(true)
  })
})

describe('initialPull: a new device asks for the most recent items first', () => {
  test('shows the newest N at once, then fills in the rest from the feed with progress', async () => {
    const api = createApiClient({ baseUrl: BASE_URL })
    for (let i = 0; i < 30; i++) {
      await api.push('other', [
        { opId: `seed-${i}`, collection: 'files', id: `f${i}`, type: 'put', value: { id: `f${i}`, name: `n${i}` }, baseVersion: null, clientTime: 1 },
      ])
    }
    // Hold the change feed until the test has looked at the state after the first answer.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const progress: Array<unknown> = []
    msw.use(
      http.get(`${BASE_URL}/sync/changes`, async () => {
        await gate // then falls through to the mock server's handler
      }),
    )
    const c = client({ files: { initialPull: 5 }, remote: { connectOnStart: true } })
    c.store.subscribe(() => {
      const p = c.store.getState().sync.progress
      if (progress.at(-1) !== p) progress.push(p)
    })
    await started(c)
    const pulling = c.store.dispatch(pullFlaskChanges())
    await until(() => c.store.getState().files.ids.length === 5, 'the newest five')
    expect([...c.store.getState().files.ids].sort()).toEqual(['f25', 'f26', 'f27', 'f28', 'f29'])
    expect(c.store.getState().sync.progress).toEqual({ operation: 'pull', done: 0, total: 30 })
    release()
    await pulling
    expect(c.store.getState().files.ids).toHaveLength(30)
    expect(c.store.getState().sync.progress).toBeNull()
    expect(progress).toContainEqual({ operation: 'pull', done: 30, total: 30 })
    // The cursor covers the feed: the next pull asks only for what is new.
    await otherDevice('late', 'new')
    await c.store.dispatch(pullFlaskChanges())
    expect(c.store.getState().files.entities.late).toEqual({ id: 'late', name: 'new' })
    expect(c.store.getState().files.ids).toHaveLength(31)
  })
})
