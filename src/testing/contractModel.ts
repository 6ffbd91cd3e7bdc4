import type { RemoteRecord } from '../remote/protocol'

/** A JSON answer: status and body. */
export interface ModelAnswer {
  readonly status: number
  readonly body: unknown
}

const COLLECTION = /^[A-Za-z0-9_-]{1,64}$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const MAX_DEPTH = 100

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)

const error = (status: number, code: string, message: string, extra: Record<string, unknown> = {}): ModelAnswer => ({
  status,
  body: { error: code, message, ...extra },
})

function depth(value: unknown): number {
  // Iterative: a hostile body must not overflow our stack.
  let max = 0
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, d] = stack.pop()!
    max = Math.max(max, d)
    if (max > MAX_DEPTH) return max
    if (Array.isArray(v)) for (const x of v) stack.push([x, d + 1])
    else if (isObject(v)) for (const x of Object.values(v)) stack.push([x, d + 1])
  }
  return max
}

/** Why an id is invalid, or null. */
export function invalidId(id: unknown): string | null {
  if (typeof id !== 'string' || id.length < 1 || id.length > 512) return 'id must be a string of 1 to 512 characters'
  if (CONTROL.test(id)) return 'id must not contain control characters'
  return null
}

interface StoredResult {
  readonly record: RemoteRecord
}

type Op = {
  opId: string
  collection: string
  id: string
  type: 'put' | 'delete'
  value: unknown
  baseVersion: number | null
  clientTime: number
  force: boolean
}

/**
 * The protocol of docs/protocol.md, in memory: the same rules as the reference Flask server
 * (idempotent opIds, server versions, tombstones, a seq-ordered change feed). The msw handlers
 * of `redux-idb-sync/testing` wrap it; contract tests run one suite against both.
 */
export function createContractModel() {
  let items = new Map<string, RemoteRecord>()
  let decided = new Map<string, StoredResult>()
  let seq = 0
  let appliedOps = 0

  const keyOf = (collection: string, id: string): string => `${collection}\u0000${id}`

  function validateOp(raw: unknown, defaults: Partial<Op> = {}): Op | string {
    if (!isObject(raw)) return 'operation must be an object'
    const op = { ...defaults, ...raw } as Record<string, unknown>
    if (typeof op.opId !== 'string' || op.opId.length < 1 || op.opId.length > 128) return 'opId must be a string of 1 to 128 characters'
    if (typeof op.collection !== 'string' || !COLLECTION.test(op.collection)) return 'collection must match ^[A-Za-z0-9_-]{1,64}$'
    const idProblem = invalidId(op.id)
    if (idProblem) return idProblem
    if (op.type !== 'put' && op.type !== 'delete') return 'type must be "put" or "delete"'
    if (op.baseVersion !== null && op.baseVersion !== undefined && !(isInt(op.baseVersion) && op.baseVersion >= 0)) {
      return 'baseVersion must be a non-negative integer or null'
    }
    if (op.clientTime !== undefined && !(typeof op.clientTime === 'number' && Number.isFinite(op.clientTime))) return 'clientTime must be a number'
    if (op.force !== undefined && typeof op.force !== 'boolean') return 'force must be a boolean'
    if (op.type === 'put' && (op.value === null || op.value === undefined)) return 'value is required for put'
    if (op.type === 'delete' && op.value !== null && op.value !== undefined) return 'value must be absent for delete'
    if (depth(op.value) > MAX_DEPTH) return `value is nested deeper than ${MAX_DEPTH}`
    return {
      opId: op.opId,
      collection: op.collection,
      id: op.id as string,
      type: op.type,
      value: op.type === 'put' ? op.value : null,
      baseVersion: (op.baseVersion as number | null | undefined) ?? null,
      clientTime: (op.clientTime as number | undefined) ?? 0,
      force: (op.force as boolean | undefined) ?? false,
    }
  }

  type Outcome =
    | { status: 'applied' | 'duplicate'; record: RemoteRecord }
    | { status: 'conflict'; current: RemoteRecord | null }

  function apply(op: Op): Outcome {
    const done = decided.get(op.opId)
    if (done) return { status: 'duplicate', record: done.record }
    const key = keyOf(op.collection, op.id)
    const current = items.get(key) ?? null
    const currentVersion = current ? current.version : 0
    const base = op.baseVersion ?? 0
    if (!op.force && base !== currentVersion) return { status: 'conflict', current }
    const record: RemoteRecord = {
      collection: op.collection,
      id: op.id,
      version: currentVersion + 1,
      updatedAt: Date.now(),
      clientTime: op.clientTime,
      deleted: op.type === 'delete',
      value: op.type === 'delete' ? null : structuredClone(op.value),
      seq: ++seq,
      opId: op.opId,
    }
    items.set(key, record)
    decided.set(op.opId, { record })
    appliedOps++
    return { status: 'applied', record }
  }

  return {
    health(): ModelAnswer {
      return { status: 200, body: { status: 'ok', serverTime: Date.now(), protocol: 1 } }
    },
    writeItem(method: 'PUT' | 'DELETE', collection: string, id: string, body: unknown): ModelAnswer {
      if (!isObject(body)) return error(400, 'bad_request', 'body must be a JSON object')
      const op = validateOp(body, { collection, id, type: method === 'PUT' ? 'put' : 'delete' } as Partial<Op>)
      if (typeof op === 'string') return error(400, 'bad_request', op)
      const outcome = apply(op)
      if (outcome.status === 'conflict') {
        return error(409, 'conflict', 'baseVersion does not match the current version', { opId: op.opId, current: outcome.current })
      }
      return {
        status: 200,
        body: { opId: op.opId, status: 'applied', record: outcome.record, ...(outcome.status === 'duplicate' ? { duplicate: true } : {}) },
      }
    },
    getItem(collection: string, id: string): ModelAnswer {
      const record = items.get(keyOf(collection, id))
      return record ? { status: 200, body: record } : error(404, 'not_found', 'no such item')
    },
    push(body: unknown): ModelAnswer {
      if (!isObject(body)) return error(400, 'bad_request', 'body must be a JSON object')
      if (typeof body.clientId !== 'string' || body.clientId.length < 1 || body.clientId.length > 128) {
        return error(400, 'bad_request', 'clientId must be a string of 1 to 128 characters')
      }
      if (!Array.isArray(body.ops)) return error(400, 'bad_request', 'ops must be a list')
      if (body.ops.length < 1) return error(400, 'bad_request', 'ops must not be empty')
      if (body.ops.length > 500) return error(413, 'payload_too_large', 'at most 500 ops per push')
      const results = body.ops.map((raw: unknown) => {
        const op = validateOp(raw)
        const opId = isObject(raw) && typeof raw.opId === 'string' ? raw.opId : null
        if (typeof op === 'string') return { opId, status: 'rejected', error: { error: 'bad_request', message: op } }
        const outcome = apply(op)
        if (outcome.status === 'conflict') return { opId: op.opId, status: 'conflict', current: outcome.current }
        return { opId: op.opId, status: outcome.status, record: outcome.record }
      })
      return { status: 200, body: { results, cursor: String(seq) } }
    },
    pull(collections: readonly string[] | null): ModelAnswer {
      const live = [...items.values()].filter((r) => !r.deleted && (!collections || collections.includes(r.collection)))
      live.sort((a, b) => a.seq - b.seq)
      return { status: 200, body: { items: live, cursor: String(seq) } }
    },
    changes(since: string | null, limit: string | null, collections: readonly string[] | null): ModelAnswer {
      const from = since === null || since === '' ? 0 : Number(since)
      if (!Number.isInteger(from) || from < 0 || !/^\d+$/.test(since ?? '0')) return error(400, 'bad_request', 'since must be a cursor')
      const max = limit === null ? 500 : Number(limit)
      if (!Number.isInteger(max) || max < 1 || max > 1000) return error(400, 'bad_request', 'limit must be 1..1000')
      const all = [...items.values()]
        .filter((r) => r.seq > from && (!collections || collections.includes(r.collection)))
        .sort((a, b) => a.seq - b.seq)
      const page = all.slice(0, max)
      const cursor = page.length > 0 ? String(page[page.length - 1]!.seq) : String(from)
      return { status: 200, body: { changes: page, cursor, hasMore: all.length > max } }
    },
    /** Every record, tombstones included, for assertions. */
    records(): RemoteRecord[] {
      return [...items.values()].sort((a, b) => a.seq - b.seq)
    },
    /** How many operations were applied (duplicates not counted): exactly-once checks. */
    get appliedOps(): number {
      return appliedOps
    },
    reset(): void {
      items = new Map()
      decided = new Map()
      seq = 0
      appliedOps = 0
    },
  }
}

export type ContractModel = ReturnType<typeof createContractModel>
