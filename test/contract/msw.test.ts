import { setupServer } from 'msw/node'
import { afterAll, beforeAll } from 'vitest'
import { WebSocket as NodeWebSocket } from 'ws'
import { createMockSyncServer } from '../../src/testing'
import { realtimeContractSuite } from './realtimeSuite'
import { contractSuite } from './suite'

// Node 20 has no global WebSocket for msw's `ws` interception to patch: give it the ws package's.
;(globalThis as { WebSocket?: unknown }).WebSocket ??= NodeWebSocket

const baseUrl = 'http://contract.test/api'
const server = createMockSyncServer({ baseUrl })
const realtimeBase = 'http://realtime-contract.test/api'
const realtimeUrl = 'ws://realtime-contract.test/realtime'
const withRealtime = createMockSyncServer({ baseUrl: realtimeBase, token: 'rt-token', realtime: { url: realtimeUrl } })
const msw = setupServer(...server.handlers, ...withRealtime.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())

contractSuite('msw handlers (redux-idb-sync/testing)', { baseUrl: () => baseUrl, reset: async () => server.reset() })
realtimeContractSuite('msw ws handlers (redux-idb-sync/testing)', { baseUrl: () => realtimeBase, realtimeUrl: () => realtimeUrl, token: 'rt-token' })
