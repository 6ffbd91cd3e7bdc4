import { http, HttpResponse } from 'msw'
import type { SetupServer } from 'msw/node'
import type { MockSyncServer } from '../../src/testing'
import { BASE_URL } from './synced'

/** An op of a push body, as the client sends it. */
export interface PushedOp {
  opId: string
  collection: string
  id: string
  type: 'put' | 'delete'
  value?: unknown
}

/**
 * Makes the mock server refuse, per operation and for good, every pushed op that `refuse`
 * names (a validation error, as a real server's would be: `status: 'rejected'`); the other ops
 * of the push go to the model as usual, and the results keep the push's order. Returns the ops
 * refused so far.
 */
export function rejectOps(msw: Pick<SetupServer, 'use'>, server: MockSyncServer, refuse: (op: PushedOp) => string | null): PushedOp[] {
  const refused: PushedOp[] = []
  msw.use(
    http.post(`${BASE_URL}/sync/push`, async ({ request }) => {
      const body = (await request.json()) as { clientId: string; ops: PushedOp[] }
      const verdicts = body.ops.map((op) => refuse(op))
      const passed = body.ops.filter((_, i) => verdicts[i] === null)
      const answer =
        passed.length > 0 ? server.model.push({ ...body, ops: passed }) : { status: 200, body: { results: [], cursor: '0', epoch: server.model.epoch } }
      if (answer.status !== 200) return HttpResponse.json(answer.body as never, { status: answer.status })
      const applied = [...(answer.body as { results: unknown[] }).results]
      const results = body.ops.map((op, i) => {
        const message = verdicts[i]
        if (message === null || message === undefined) return applied.shift()
        refused.push(op)
        return { opId: op.opId, status: 'rejected', error: { error: 'validation', message } }
      })
      const cursor = (answer.body as { cursor: string }).cursor
      return HttpResponse.json({
        results,
        cursor: passed.length > 0 ? cursor : String(server.model.records().reduce((m, r) => Math.max(m, r.seq), 0)),
        epoch: server.model.epoch,
      })
    }),
  )
  return refused
}
