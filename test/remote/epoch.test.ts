import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { isHttpError, isMalformedResponseError, isRetryableError } from '../../src'
import { createApiClient } from '../../src/remote'
import { parseRecord } from '../../src/remote/http/parse'
import { createMockSyncServer } from '../../src/testing'
import { BASE_URL } from '../support/synced'

const server = createMockSyncServer({ baseUrl: BASE_URL })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.reset()
  msw.resetHandlers()
})
afterAll(() => msw.close())

const caught = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  )
const op = { opId: 'op-1', collection: 'files', id: 'a', type: 'put' as const, value: { id: 'a' }, baseVersion: null, clientTime: 1 }

describe('the epoch (protocol 2 and later) in the API client', () => {
  test('health, push, pull and changes answers carry the epoch; a rotation shows in all of them', async () => {
    const client = createApiClient({ baseUrl: BASE_URL })
    const health = await client.health()
    expect(health.protocol).toBe(4)
    expect(health.epoch).toBe(server.model.epoch)
    expect((await client.push('c', [op])).epoch).toBe(health.epoch)
    expect((await client.pull()).epoch).toBe(health.epoch)
    expect((await client.changes('0')).epoch).toBe(health.epoch)
    const rotated = server.rotateEpoch()
    expect(rotated).not.toBe(health.epoch)
    expect((await client.health()).epoch).toBe(rotated)
    expect((await client.pull()).items).toHaveLength(1) // a rotation keeps the data
    expect((await client.changes('0')).epoch).toBe(rotated)
  })

  test('a protocol 1 answer without an epoch still parses, with no epoch', async () => {
    msw.use(http.get(`${BASE_URL}/health`, () => HttpResponse.json({ status: 'ok', serverTime: 1, protocol: 1 }), { once: true }))
    const health = await createApiClient({ baseUrl: BASE_URL }).health()
    expect(health).toEqual({ status: 'ok', serverTime: 1, protocol: 1 })
    expect('epoch' in health).toBe(false)
  })

  test.each([[42], [''], ['x'.repeat(129)], [null]])('an epoch of %j is a MalformedResponseError', async (epoch) => {
    msw.use(http.get(`${BASE_URL}/sync/pull`, () => HttpResponse.json({ items: [], cursor: '0', epoch }), { once: true }))
    const error = await caught(createApiClient({ baseUrl: BASE_URL }).pull())
    expect(isMalformedResponseError(error)).toBe(true)
    expect((error as Error).message).toMatch(/epoch/)
  })

  test('a cursor beyond the feed is an HttpError 410 with code cursor_ahead, not retryable', async () => {
    const client = createApiClient({ baseUrl: BASE_URL })
    await client.push('c', [op])
    const error = await caught(client.changes('5'))
    expect(isHttpError(error)).toBe(true)
    expect(error).toMatchObject({ status: 410, code: 'cursor_ahead' })
    expect(isRetryableError(error)).toBe(false)
  })
})

describe('the depth rule in the response validator', () => {
  const nested = (steps: number, leaf: unknown, array = false): unknown => {
    let value = leaf
    for (let i = 0; i < steps; i++) value = array ? [value] : { d: value }
    return value
  }
  const record = (value: unknown) => ({ collection: 'files', id: 'a', version: 1, updatedAt: 1, clientTime: 1, deleted: false, value, seq: 1 })

  test.each([
    ['objects', false, 1],
    ['arrays', true, 1],
    ['{} leaves', false, {}],
    ['[] leaves', true, []],
    ['string leaves', false, 'x'],
  ] as const)('%s: depth 100 is accepted, 101 refused', (_name, array, leaf) => {
    expect(() => parseRecord(record(nested(100, leaf, array)), 'r')).not.toThrow()
    expect(() => parseRecord(record(nested(101, leaf, array)), 'r')).toThrow(/deeper than 100/)
  })

  test('a primitive leaf at depth 101 beside shallow ones is refused', () => {
    expect(() => parseRecord(record({ shallow: 1, deep: nested(99, 'x') }), 'r')).not.toThrow()
    expect(() => parseRecord(record({ shallow: 1, deep: nested(100, 'x') }), 'r')).toThrow(/deeper than 100/)
  })
})
