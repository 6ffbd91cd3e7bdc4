import { afterAll, beforeAll } from 'vitest'
import { contractSuite } from '../contract/suite'
import { startFlaskServer, type FlaskServer } from './flaskServer'

let flask: FlaskServer
beforeAll(async () => {
  flask = await startFlaskServer()
})
afterAll(async () => {
  await flask.close()
})

contractSuite('reference Flask server', { baseUrl: () => flask.baseUrl, reset: () => flask.reset() })
