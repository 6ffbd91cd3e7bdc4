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
