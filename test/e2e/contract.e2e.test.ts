import { afterAll, beforeAll } from 'vitest'
import { WebSocket as NodeWebSocket } from 'ws'
import { realtimeContractSuite } from '../contract/realtimeSuite'
import { contractSuite } from '../contract/suite'
import { startFlaskServer, type FlaskServer } from './flaskServer'

// The real-time suite speaks through the global WebSocket; Node 20 has none.
;(globalThis as { WebSocket?: unknown }).WebSocket ??= NodeWebSocket

let flask: FlaskServer
let realtime: FlaskServer
beforeAll(async () => {
  flask = await startFlaskServer()
  // The socket server: on a thread of app.py, or (RIS_SERVER_WORKERS > 0) its own process beside gunicorn.
  realtime = await startFlaskServer({ token: 'rt-token', realtime: true })
})
afterAll(async () => {
  await flask.close()
  await realtime.close()
})

contractSuite('reference Flask server', { baseUrl: () => flask.baseUrl, reset: () => flask.reset() })
realtimeContractSuite('reference socket server', { baseUrl: () => realtime.baseUrl, realtimeUrl: () => realtime.realtimeUrl!, token: 'rt-token' })
