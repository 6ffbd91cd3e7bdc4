import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { isAuthError, isHttpError, isMalformedResponseError, isNetworkError, isRequestTimeoutError, isRetryableError } from '../../../src'
import { createApiClient, type RemoteOperation } from '../../../src/remote'
import { createMockSyncServer } from '../../../src/testing'
import { BASE_URL } from '../../support/synced'

const server = createMockSyncServer({ baseUrl: BASE_URL })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.reset()
  msw.resetHandlers()
})
afterAll(() => msw.close())

let n = 0
const op = (over: Partial<RemoteOperation> = {}): RemoteOperation => ({
  opId: `op-${++n}`,
  collection: 'files',
  id: 'a',
  type: 'put',
  value: { id: 'a', secret: 'PAYLOAD-TEXT' },
  baseVersion: null,
  clientTime: 1,
  ...over,
})
const caught = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  )

describe('the API client', () => {
  test('health, push, pull and changes speak the protocol', async () => {
    const client = createApiClient({ baseUrl: BASE_URL })
    expect((await client.health()).status).toBe('ok')
    const pushed = await client.push('c1', [op(), op({ id: 'b' })])
    expect(pushed.results.map((r) => r.status)).toEqual(['applied', 'applied'])
    expect((await client.pull()).items).toHaveLength(2)
    const changes = await client.changes('0', { limit: 1 })
    expect(changes.changes).toHaveLength(1)
    expect(changes.hasMore).toBe(true)
  })

  test('a timeout is a RequestTimeoutError, and ky never retries (one request)', async () => {
    const client = createApiClient({ baseUrl: BASE_URL, timeoutMs: 50 })
    server.fail({ kind: 'hang' })
    const error = await caught(client.push('c', [op()]))
    expect(isRequestTimeoutError(error)).toBe(true)
    expect(isRetryableError(error)).toBe(true)
    expect(server.requests.push).toBe(1)
  })

  test('a network failure is a NetworkError', async () => {
    const client = createApiClient({ baseUrl: BASE_URL })
    server.fail({ kind: 'network' })
    const error = await caught(client.pull())
    expect(isNetworkError(error)).toBe(true)
    expect(server.requests.pull).toBe(1)
  })

  test.each([
    [503, true],
    [500, true],
    [429, true],
    [400, false],
    [404, false],
    [422, false],
  ])('status %i is an HttpError, retryable: %s, sent once', async (status, retryable) => {
    const client = createApiClient({ baseUrl: BASE_URL })
    server.fail({ kind: 'status', status })
    const error = await caught(client.push('c', [op()]))
    expect(isHttpError(error)).toBe(true)
    expect((error as { status: number }).status).toBe(status)
    expect(isRetryableError(error)).toBe(retryable)
    expect(server.requests.push).toBe(1)
  })

  test.each([
    ['html', /not JSON/],
    ['truncated', /not JSON/],
    ['wrong-shape', /results is not an array/],
  ] as const)('a %s answer is a MalformedResponseError naming the problem', async (kind, problem) => {
    const client = createApiClient({ baseUrl: BASE_URL })
    server.fail({ kind })
    const error = await caught(client.push('c', [op()]))
    expect(isMalformedResponseError(error)).toBe(true)
    expect((error as Error).message).toMatch(problem)
  })

  test('static and computed headers are sent', async () => {
    const seen: Array<string | null> = []
    msw.use(
      http.get(`${BASE_URL}/health`, ({ request }) => {
        seen.push(request.headers.get('x-app'))
        return HttpResponse.json({ status: 'ok', serverTime: 1, protocol: 1 })
      }),
    )
    await createApiClient({ baseUrl: BASE_URL, headers: { 'x-app': 'static' } }).health()
    await createApiClient({ baseUrl: BASE_URL, headers: async () => ({ 'x-app': 'computed' }) }).health()
    expect(seen).toEqual(['static', 'computed'])
  })

  test('a 401 triggers one single-flight refresh for concurrent requests, then one retry each', async () => {
    server.setToken('fresh')
    const calls: boolean[] = []
    const client = createApiClient({
      baseUrl: BASE_URL,
      getToken: async ({ refresh }) => {
        calls.push(refresh)
        await new Promise((r) => setTimeout(r, 10))
        return refresh ? 'fresh' : 'stale'
      },
    })
    const results = await Promise.all([client.pull(), client.pull(), client.changes('0')])
    expect(results).toHaveLength(3)
    expect(calls.filter((refresh) => refresh)).toHaveLength(1)
    expect(server.requests.pull).toBe(4) // 2 rejected + 2 retried
  })

  test('still 401 after the refresh is an AuthError (not retried again)', async () => {
    server.setToken('never-matches')
    let refreshes = 0
    const client = createApiClient({ baseUrl: BASE_URL, getToken: ({ refresh }) => (refresh ? `r${++refreshes}` : 'x') })
    const error = await caught(client.pull())
    expect(isAuthError(error)).toBe(true)
    expect(refreshes).toBe(1)
    expect(server.requests.pull).toBe(2)
  })

  test('ids with /, ?, .., unicode round-trip through the item endpoints', async () => {
    const client = createApiClient({ baseUrl: BASE_URL })
    for (const id of ['a/b', 'x?y=1', '../up', 'ünï ✓']) {
      const put = await client.putItem(op({ id, value: { id } }))
      expect(put.status).toBe('applied')
      if (put.status !== 'conflict') expect(put.record.id).toBe(id)
      const conflict = await client.putItem(op({ id, value: { id } }))
      expect(conflict.status).toBe('conflict')
      const del = await client.deleteItem(op({ id, type: 'delete', value: undefined, baseVersion: 1 }))
      expect(del.status === 'applied' && del.record.deleted).toBe(true)
    }
  })

  test('payloads are never logged', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m).mockImplementation(() => {}))
    const client = createApiClient({ baseUrl: BASE_URL })
    server.fail({ kind: 'status', status: 500 })
    const error = await caught(client.push('c', [op()]))
    await client.push('c', [op()])
    const logged = spies
      .flatMap((s) => s.mock.calls.flat())
      .map(String)
      .join('\n')
    expect(logged).not.toContain('PAYLOAD-TEXT')
    expect(JSON.stringify((error as { toJSON(): unknown }).toJSON())).not.toContain('PAYLOAD-TEXT')
    expect(String((error as Error).message)).not.toContain('PAYLOAD-TEXT')
  })

  test('a bad baseUrl is an InvalidOptionError', () => {
    expect(() => createApiClient({ baseUrl: 'not a url' })).toThrow(/remote.baseUrl/)
  })
})
