import { http, HttpResponse } from 'msw'
import { gunzipSync } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { isHttpError, isInvalidOptionError, isValidationError, syncFromFlaskBulk } from '../../src'
import { createApiClient, type RemoteOperation } from '../../src/remote'
import { until } from '../support/instrumentedStore'
import { deleteFile, saveFile, type FileItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()

/** A fetch that records what each push request carried on the wire. */
function wire() {
  const seen: Array<{ encoding: string | null; bytes: Uint8Array }> = []
  const fetchImpl: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    if (request.url.endsWith('/sync/push'))
      seen.push({ encoding: request.headers.get('content-encoding'), bytes: new Uint8Array(await request.clone().arrayBuffer()) })
    return fetch(request)
  }
  return { seen, fetch: fetchImpl }
}

let n = 0
const op = (value: unknown): RemoteOperation => ({ opId: `z-${++n}`, collection: 'files', id: `i${n}`, type: 'put', value, baseVersion: null, clientTime: 1 })
const big = { id: 'x', body: 'lorem ipsum dolor '.repeat(500) }

describe('gzip request bodies', () => {
  test('a push body over the threshold goes out gzip-compressed, and the server applies it', async () => {
    const w = wire()
    const api = createApiClient({ baseUrl: BASE_URL, fetch: w.fetch })
    const answer = await api.push('c', [op(big)], { compress: true })
    expect(answer.results[0]!.status).toBe('applied')
    expect(w.seen[0]!.encoding).toBe('gzip')
    const inflated = JSON.parse(gunzipSync(w.seen[0]!.bytes).toString()) as { ops: Array<{ value: unknown }> }
    expect(inflated.ops[0]!.value).toEqual(big)
    expect(w.seen[0]!.bytes.byteLength).toBeLessThan(JSON.stringify(big).length / 10)
  })

  test('small bodies, a server not known to speak protocol 3, and compressRequestsOver: false stay plain', async () => {
    const w = wire()
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch }).push('c', [op({ id: 's' })], { compress: true })
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch }).push('c', [op(big)])
    await createApiClient({ baseUrl: BASE_URL, fetch: w.fetch, compressRequestsOver: false }).push('c', [op(big)], { compress: true })
    expect(w.seen.map((s) => s.encoding)).toEqual([null, null, null])
    expect(server.model.records()).toHaveLength(3)
  })

  test('a bad threshold is refused by name', () => {
    let error: unknown
    try {
      createApiClient({ baseUrl: BASE_URL, compressRequestsOver: -1 })
    } catch (caught) {
      error = caught
    }
    expect(isInvalidOptionError(error)).toBe(true)
    expect(String(error)).toMatch(/remote\.compressRequestsOver/)
  })
})

describe('an older server (protocol 2)', () => {
  test('gets whole values and plain bodies from a fieldMerge slice', async () => {
    msw.use(http.get(`${BASE_URL}/health`, () => HttpResponse.json({ status: 'ok', serverTime: Date.now(), protocol: 2, epoch: server.model.epoch })))
    const w = wire()
    const c = client({ files: { fieldMerge: true }, remote: { fetch: w.fetch } })
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    c.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: big.body }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'v1')
    c.store.dispatch(saveFile({ id: 'doc', name: 'v2', body: big.body }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'v2')
    expect(w.seen.map((s) => s.encoding)).toEqual([null, null])
    const last = JSON.parse(new TextDecoder().decode(w.seen[1]!.bytes)) as { ops: Array<Record<string, unknown>> }
    expect(last.ops[0]).toMatchObject({ type: 'put', value: { id: 'doc', name: 'v2' } })
  })
})

describe('a merged item that fails validate', () => {
  test('is reported as a ValidationError and not written; the local edit stays and nothing is queued twice', async () => {
    // Alice's schema refuses a body that Bob's device writes.
    const validate = (item: unknown) => (item as FileItem).body !== 'forbidden' || 'body is forbidden'
    const alice = client({ dbName: 'alice', files: { fieldMerge: true, validate } })
    const bob = client({ dbName: 'bob', files: { fieldMerge: true } })
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'ok' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1')
    await bob.store.dispatch(syncFromFlaskBulk())
    bob.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'forbidden' }))
    await bob.persistence.flush()
    await until(() => bob.store.getState().sync.outboxDepth === 0, 'bob')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'alice', body: 'ok' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'alice')
    expect(server.model.records()[0]!.value).toEqual({ id: 'doc', name: 'alice', body: 'forbidden' })
    expect(alice.errors.some((e) => isValidationError(e) && e.source === 'server')).toBe(true)
    expect(alice.store.getState().files.entities.doc).toEqual({ id: 'doc', name: 'alice', body: 'ok' })
    expect(alice.store.getState().sync.deadLetters).toEqual([])
  })
})

describe('bad input around patches and compression: typed errors, nothing lost', () => {
  test('a patch against an item another device deleted is a conflict; client-wins recreates it whole', async () => {
    const alice = client({ dbName: 'alice', files: { fieldMerge: true }, strategy: 'client-wins' })
    const bob = client({ dbName: 'bob' })
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'v1', body: 'b' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1')
    await bob.store.dispatch(syncFromFlaskBulk())
    bob.store.dispatch(deleteFile('doc'))
    await bob.persistence.flush()
    await until(() => bob.store.getState().sync.outboxDepth === 0 && server.model.records()[0]!.deleted, 'bob deleted it')
    alice.store.dispatch(saveFile({ id: 'doc', name: 'alice', body: 'b' }))
    await alice.persistence.flush()
    await until(() => alice.conflicts.length === 1 && alice.store.getState().sync.outboxDepth === 0, 'decided')
    expect(server.model.records()[0]).toMatchObject({ deleted: false, version: 3, value: { id: 'doc', name: 'alice', body: 'b' } })
    expect(alice.conflicts[0]).toMatchObject({ resolution: 'client', server: { deleted: true } })
  })

  test('a push whose body inflates beyond the server limit is a 413: the op is dead-lettered, not lost', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connected')
    // 3 MB of one character: a few kB gzip-compressed, over the mock's 2 MiB limit once inflated.
    c.store.dispatch(saveFile({ id: 'huge', name: 'h', body: 'x'.repeat(3 * 1024 * 1024) }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.deadLetters.length === 1, 'dead-lettered')
    expect(c.store.getState().sync.deadLetters[0]).toMatchObject({ key: 'files:huge', status: 413, code: 'payload_too_large' })
    expect(c.errors.some((e) => isHttpError(e) && e.status === 413)).toBe(true)
    expect(server.model.records()).toEqual([])
  })
})
