import { http, HttpResponse } from 'msw'
import { afterEach, expect, test, vi } from 'vitest'
import { advance, useFakeClock } from '../support/clock'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
afterEach(() => {
  vi.useRealTimers()
})

test('a slow first health check (a page still loading) is measured again: the fastest round trip sets the clock offset', async () => {
  useFakeClock()
  let clock = 1_000_000 // the device's clock, and the server's: the true offset is 0
  let checks = 0
  msw.use(
    http.get(`${BASE_URL}/health`, () => {
      // The first request reaches the server 1190 ms after it was sent and its answer comes back
      // at once: the midpoint estimate says the server is 595 ms ahead.
      if (++checks === 1) clock += 1190
      return HttpResponse.json({ ...(server.model.health().body as object), serverTime: clock })
    }),
  )
  const c = client({ remote: { now: () => clock } })
  await c.persistence.whenHydrated()
  await advance(50) // the health check the engine starts with
  expect(checks).toBe(1)
  expect(c.persistence.sync!.clockOffsetMs).toBe(595)
  await advance(1100) // the second measurement, a second later: a round trip of 0 ms
  expect(checks).toBe(2)
  expect(c.persistence.sync!.clockOffsetMs).toBe(0)
  await advance(20_000)
  expect(checks).toBe(2) // a good round trip needs no more
})
