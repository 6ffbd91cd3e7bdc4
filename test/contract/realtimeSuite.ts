// The real-time channel of docs/protocol.md, run against the msw `ws` handlers of
// redux-idb-sync/testing (test/contract/msw.test.ts) and against the real socket server
// (test/e2e/contract.e2e.test.ts), so the two cannot drift apart. Speaks raw frames through the
// global WebSocket (msw patches it; the e2e file installs the `ws` package's class).
import { describe, expect, test } from 'vitest'

export interface RealtimeContractTarget {
  /** e.g. http://127.0.0.1:5000/api */
  baseUrl(): string
  /** e.g. ws://127.0.0.1:8765 */
  realtimeUrl(): string
  /** A token the server accepts (it requires one). */
  token: string
}

interface Socket {
  next(): Promise<Record<string, unknown>>
  send(message: unknown): void
  closed: Promise<number>
  close(): void
}

function open(url: string): Promise<Socket> {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocket }).WebSocket!
  const ws = new Ctor(url)
  const queue: Array<Record<string, unknown>> = []
  const waiting: Array<(m: Record<string, unknown>) => void> = []
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as Record<string, unknown>
    const take = waiting.shift()
    if (take) take(message)
    else queue.push(message)
  })
  const closed = new Promise<number>((resolve) => ws.addEventListener('close', (event) => resolve(event.code)))
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () =>
      resolve({
        next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))),
        send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
        closed,
        close: () => ws.close(1000),
      }),
    )
    ws.addEventListener('error', () => reject(new Error(`could not open ${url}`)))
  })
}

export function realtimeContractSuite(name: string, target: RealtimeContractTarget): void {
  const push = async (id: string): Promise<{ cursor: string }> => {
    const response = await fetch(`${target.baseUrl()}/sync/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
      body: JSON.stringify({
        clientId: 'rt-contract',
        ops: [{ opId: `rt-${Date.now()}-${Math.random()}`, collection: 'files', id, type: 'put', value: { id }, baseVersion: null, clientTime: 1 }],
      }),
    })
    expect(response.status).toBe(200)
    return (await response.json()) as { cursor: string }
  }
  const head = async (): Promise<string> => {
    const response = await fetch(`${target.baseUrl()}/sync/changes?since=0&limit=1000`, { headers: { authorization: `Bearer ${target.token}` } })
    let body = (await response.json()) as { cursor: string; hasMore: boolean }
    while (body.hasMore) {
      const more = await fetch(`${target.baseUrl()}/sync/changes?since=${body.cursor}&limit=1000`, { headers: { authorization: `Bearer ${target.token}` } })
      body = (await more.json()) as { cursor: string; hasMore: boolean }
    }
    return body.cursor
  }
  const hello = (token: unknown, protocol = 1) => ({ type: 'hello', protocol, token })
  /** What `POST /sync/changes` answers for `body` now: its status and JSON. */
  const httpChanges = async (body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${target.baseUrl()}/sync/changes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
      body: JSON.stringify(body),
    })
    return { status: response.status, json: (await response.json()) as Record<string, unknown> }
  }
  /** A socket that said hello and got `ready`. */
  const ready = async (): Promise<{ socket: Socket; ready: Record<string, unknown> }> => {
    const socket = await open(target.realtimeUrl())
    socket.send(hello(target.token))
    return { socket, ready: await socket.next() }
  }
  /** The next message that is not a poke (pushes made by the test poke this socket too). */
  const answer = async (socket: Socket): Promise<Record<string, unknown>> => {
    for (;;) {
      const message = await socket.next()
      if (message.type !== 'poke') return message
    }
  }

  describe(`real-time contract: ${name}`, () => {
    test('hello with the token gets ready with the feed head; a committed write pokes with the new cursor', async () => {
      const socket = await open(target.realtimeUrl())
      socket.send(hello(target.token))
      const ready = await socket.next()
      expect(ready).toMatchObject({ type: 'ready', protocol: 1, cursor: await head() })
      expect(typeof ready.heartbeatMs).toBe('number')
      expect(typeof ready.serverTime).toBe('number')
      const { cursor } = await push(`poked-${Date.now()}`)
      const poke = await socket.next()
      expect(poke.type).toBe('poke')
      expect(poke.cursor).toBe(cursor)
      expect(typeof poke.at).toBe('number')
      socket.close()
    })

    test('ping is answered with a pong carrying its t', async () => {
      const socket = await open(target.realtimeUrl())
      socket.send(hello(target.token))
      await socket.next()
      socket.send({ type: 'ping', t: 42 })
      expect(await socket.next()).toEqual({ type: 'pong', t: 42 })
      socket.close()
    })

    test('ready offers pulls; a pull over the socket answers exactly what POST /sync/changes answers, page by page', async () => {
      const { socket, ready: greeting } = await ready()
      expect(greeting.features).toContain('pull')
      const start = await head()
      const stamp = `${Date.now()}-${Math.random()}`
      for (let i = 0; i < 3; i++) await push(`paged-${stamp}-${i}`)
      let since = start
      const seen: unknown[] = []
      for (let page = 0; page < 3; page++) {
        socket.send({ type: 'pull', id: `p${page}`, since, limit: 1, collections: ['files'] })
        const { type, id, ...body } = await answer(socket)
        expect({ type, id }).toEqual({ type: 'changes', id: `p${page}` })
        const http = await httpChanges({ since, limit: 1, collections: ['files'] })
        expect(http.status).toBe(200)
        expect(body).toEqual(http.json)
        seen.push(...(body.changes as unknown[]))
        since = body.cursor as string
      }
      expect(seen.map((r) => (r as { id: string }).id)).toEqual([0, 1, 2].map((i) => `paged-${stamp}-${i}`))
      // A collection with nothing in it: an empty page at the same cursor.
      socket.send({ type: 'pull', id: 'none', since: start, collections: ['nothing_here'] })
      expect(await answer(socket)).toMatchObject({ type: 'changes', id: 'none', changes: [], hasMore: false })
      socket.close()
    })

    test('two pulls sent back to back are answered in order, each with its id', async () => {
      const { socket } = await ready()
      socket.send({ type: 'pull', id: 'first', since: '0', limit: 1 })
      socket.send({ type: 'pull', id: 'second', since: '0', limit: 2 })
      expect((await answer(socket)).id).toBe('first')
      expect((await answer(socket)).id).toBe('second')
      socket.close()
    })

    test.each([
      ['a cursor beyond the head', { since: '999999999999' }, 410, 'cursor_ahead'],
      ['limit 0', { since: '0', limit: 0 }, 400, 'bad_request'],
      ['since that is not a string', { since: 5 }, 400, 'bad_request'],
      ['collections that is not a list', { since: '0', collections: 'files' }, 400, 'bad_request'],
    ])('a pull with %s fails as POST /sync/changes does, and the socket goes on', async (_name, params, status, error) => {
      const { socket } = await ready()
      socket.send({ type: 'pull', id: 'bad', ...params })
      const failed = await answer(socket)
      expect(failed).toMatchObject({ type: 'pullFailed', id: 'bad', status, error })
      expect(typeof failed.message).toBe('string')
      const http = await httpChanges(params)
      expect([http.status, http.json.error]).toEqual([status, error])
      if (status === 410) expect(failed.epoch).toBe(http.json.epoch)
      socket.send({ type: 'pull', id: 'after', since: '0', limit: 1 })
      expect(await answer(socket)).toMatchObject({ type: 'changes', id: 'after' })
      socket.close()
    })

    test('a pull without a usable id closes the socket with 4000', async () => {
      const { socket } = await ready()
      socket.send({ type: 'pull', since: '0' })
      expect(await socket.closed).toBe(4000)
    })

    test.each([
      ['an unknown token', hello('not-a-token'), 4001],
      ['no token', hello(null), 4001],
      ['another protocol version', hello('x', 99), 4005],
      ['a ping before hello', { type: 'ping', t: 1 }, 4000],
      ['a frame that is not JSON', 'hello?', 4000],
    ])('%s closes the socket with %#', async (_name, first, code) => {
      const socket = await open(target.realtimeUrl())
      socket.send(first)
      expect(await socket.closed).toBe(code)
    })
  })
}
