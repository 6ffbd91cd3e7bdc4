import { setupServer } from 'msw/node'
import { afterAll, beforeAll } from 'vitest'
import { createMockSyncServer } from '../../src/testing'
import { contractSuite } from './suite'

const baseUrl = 'http://contract.test/api'
const server = createMockSyncServer({ baseUrl })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())

contractSuite('msw handlers (redux-idb-sync/testing)', { baseUrl: () => baseUrl, reset: async () => server.reset() })
