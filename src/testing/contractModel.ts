import { MAX_VALUE_DEPTH, deeperThan } from '../core/depth'
import { MAX_WIRE_ID_LENGTH, hasControlCharacter, isWellFormed } from '../core/ids'
import type { RemoteRecord } from '../remote/http/protocol'
import { isObject } from '../utils/isObject'
import { malformedPatch, mergePatchOnto, pointer, type JsonObject } from '../utils/fieldPatch'

/** A JSON answer: status and body. */
export interface ModelAnswer {
  readonly status: number
  readonly body: unknown
}

/** The protocol version of docs/protocol.md that this model speaks. */
export const PROTOCOL = 4
const COLLECTION = /^[A-Za-z0-9_-]{1,64}$/
const CURSOR = /^[0-9]{1,19}$/
const LIMIT = /^[0-9]{1,4}$/
const MAX_CURSOR = 2n ** 63n - 1n
const MAX_CLIENT_TIME = 2 ** 53
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)

const error = (status: number, code: string, message: string, extra: Record<string, unknown> = {}): ModelAnswer => ({
  status,
  body: { error: code, message, ...extra },
})

/** Why `value` is not a well-formed string of 1 to `maxLength` characters, or null. */
function badString(value: unknown, name: string, maxLength: number): string | null {
  if (typeof value !== 'string' || value.length < 1 || value.length > maxLength) return `${name} must be a string of 1 to ${maxLength} characters`
  if (!isWellFormed(value)) return `${name} must be well-formed UTF-16 (no unpaired surrogates)`
  return null
}

/** Why an id is invalid, or null. */
export function invalidId(id: unknown): string | null {
  const problem = badString(id, 'id', MAX_WIRE_ID_LENGTH)
  if (problem) return problem
  if (hasControlCharacter(id as string)) return 'id must not contain control characters'
  return null
}

/** Milliseconds as an integer in [0, 2**53], rounded half up (Math.round); or null. */
function clientTimeOf(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_CLIENT_TIME) return null
  return Math.round(value)
}

/**
 * Parses a request body as strict JSON: a number that overflows to infinity (JSON.parse reads
 * `1e999` as Infinity) makes the whole body invalid, as NaN and Infinity already do.
 */
export function parseStrictJson(text: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, problem: 'body is not valid JSON' }
  }
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'number' && !Number.isFinite(v)) return { ok: false, problem: 'body is not strict JSON: a number is too large to be finite' }
    if (Array.isArray(v)) for (const x of v as unknown[]) stack.push(x)
    else if (isObject(v)) for (const x of Object.values(v)) stack.push(x)
  }
  return { ok: true, value }
}

/** A new random epoch: 32 hex digits. */
function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

interface StoredResult {
  readonly record: RemoteRecord
}

type Op = {
  opId: string
  collection: string
  id: string
  type: 'put' | 'delete' | 'patch'
  value: unknown
  baseVersion: number | null
  clientTime: number
  force: boolean
  patch: JsonObject | null
  base: JsonObject | null
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
  let epoch = newEpoch()

  const keyOf = (collection: string, id: string): string => `${collection}\u0000${id}`

  function validateOp(raw: unknown, defaults: Partial<Op> = {}): Op | string {
    if (!isObject(raw)) return 'operation must be an object'
    const op = { ...defaults, ...raw } as Record<string, unknown>
    const opIdProblem = badString(op.opId, 'opId', 128)
    if (opIdProblem) return opIdProblem
    if (typeof op.collection !== 'string' || !COLLECTION.test(op.collection)) return 'collection must match ^[A-Za-z0-9_-]{1,64}$'
    const idProblem = invalidId(op.id)
    if (idProblem) return idProblem
    if (op.type !== 'put' && op.type !== 'delete' && op.type !== 'patch') return 'type must be "put", "delete" or "patch"'
    if (op.baseVersion !== null && op.baseVersion !== undefined && !(isInt(op.baseVersion) && op.baseVersion >= 0)) {
      return 'baseVersion must be a non-negative integer or null'
    }
    const clientTime = op.clientTime === undefined ? 0 : clientTimeOf(op.clientTime)
    if (clientTime === null) return `clientTime must be a finite number from 0 to ${MAX_CLIENT_TIME}`
    if (op.force !== undefined && typeof op.force !== 'boolean') return 'force must be a boolean'
    if (op.type === 'put' && (op.value === null || op.value === undefined)) return 'value is required for put'
    if (op.type !== 'put' && op.value !== null && op.value !== undefined) return `value must be absent for ${op.type}`
    if (deeperThan(op.value, MAX_VALUE_DEPTH)) return `value is nested deeper than ${MAX_VALUE_DEPTH}`
    if (op.type === 'patch') {
      const problem = malformedPatch(op.patch, op.base)
      if (problem) return `malformed patch: ${problem}`
      if (deeperThan(op.patch, MAX_VALUE_DEPTH) || deeperThan(op.base, MAX_VALUE_DEPTH)) return `patch is nested deeper than ${MAX_VALUE_DEPTH}`
    } else if ((op.patch !== null && op.patch !== undefined) || (op.base !== null && op.base !== undefined)) {
      return `patch and base belong to a patch operation, not a ${op.type}`
    }
    return {
      opId: op.opId as string,
      collection: op.collection,
      id: op.id as string,
      type: op.type,
      value: op.type === 'put' ? op.value : null,
      baseVersion: (op.baseVersion as number | null | undefined) ?? null,
      clientTime,
      force: (op.force as boolean | undefined) ?? false,
      patch: op.type === 'patch' ? (op.patch as JsonObject) : null,
      base: op.type === 'patch' ? (op.base as JsonObject) : null,
    }
  }

  type Outcome = { status: 'applied' | 'duplicate'; record: RemoteRecord } | { status: 'conflict'; current: RemoteRecord | null; fields?: string[] }

  function apply(op: Op): Outcome {
    const done = decided.get(op.opId)
    if (done) return { status: 'duplicate', record: done.record }
    const key = keyOf(op.collection, op.id)
    const current = items.get(key) ?? null
    const currentVersion = current ? current.version : 0
    const base = op.baseVersion ?? 0
    let value = op.value
    if (op.type === 'patch') {
      // A patch merges onto what the server has, at field level, whatever the base version;
      // there must be an item to patch.
      if (!current || current.deleted) return { status: 'conflict', current, fields: [] }
      const merged = mergePatchOnto(current.value, { patch: op.patch!, base: op.base! }, op.force)
      if (merged.conflicts.length > 0) return { status: 'conflict', current, fields: merged.conflicts.map(pointer) }
      value = merged.value
    } else if (!op.force && base !== currentVersion) return { status: 'conflict', current }
    const record: RemoteRecord = {
      collection: op.collection,
      id: op.id,
      version: currentVersion + 1,
      updatedAt: Date.now(),
      clientTime: op.clientTime,
      deleted: op.type === 'delete',
      value: op.type === 'delete' ? null : structuredClone(value),
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
      return { status: 200, body: { status: 'ok', serverTime: Date.now(), protocol: PROTOCOL, epoch } }
    },
    /** Collection, id and type come from the path and method; a body naming others is a 400. */
    writeItem(method: 'PUT' | 'DELETE', collection: string, id: string, body: unknown): ModelAnswer {
      if (!isObject(body)) return error(400, 'bad_request', 'body must be a JSON object')
      const fromPath: Partial<Op> = { collection, id, type: method === 'PUT' ? 'put' : 'delete' }
      for (const [field, expected] of Object.entries(fromPath)) {
        if (field in body && body[field] !== expected) return error(400, 'bad_request', `${field} comes from the path and method; the body names another`)
      }
      const op = validateOp(body, fromPath)
      if (typeof op === 'string') return error(400, 'bad_request', op)
      const outcome = apply(op)
      if (outcome.status === 'conflict') {
        return error(409, 'conflict', 'baseVersion does not match the current version', {
          opId: op.opId,
          current: outcome.current,
          ...(outcome.fields?.length ? { fields: outcome.fields } : {}),
        })
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
      const clientIdProblem = badString(body.clientId, 'clientId', 128)
      if (clientIdProblem) return error(400, 'bad_request', clientIdProblem)
      if (!Array.isArray(body.ops)) return error(400, 'bad_request', 'ops must be a list')
      if (body.ops.length < 1) return error(400, 'bad_request', 'ops must not be empty')
      if (body.ops.length > 500) return error(413, 'payload_too_large', 'at most 500 ops per push')
      const results = body.ops.map((raw: unknown) => {
        const op = validateOp(raw)
        const opId = isObject(raw) && typeof raw.opId === 'string' ? raw.opId : null
        if (typeof op === 'string') return { opId, status: 'rejected', error: { error: 'bad_request', message: op } }
        const outcome = apply(op)
        if (outcome.status === 'conflict') {
          return { opId: op.opId, status: 'conflict', current: outcome.current, ...(outcome.fields ? { fields: outcome.fields } : {}) }
        }
        return { opId: op.opId, status: outcome.status, record: outcome.record }
      })
      return { status: 200, body: { results, cursor: String(seq), epoch } }
    },
    /** `limit` (protocol 3): the `limit` most recent live items, newest first, with `total` and `hasMore`. */
    pull(collections: readonly string[] | null, limit: string | null = null): ModelAnswer {
      const live = [...items.values()].filter((r) => !r.deleted && (!collections || collections.includes(r.collection)))
      live.sort((a, b) => a.seq - b.seq)
      if (limit !== null) {
        const max = LIMIT.test(limit) ? Number(limit) : 0
        if (max < 1 || max > 1000) return error(400, 'bad_request', 'limit must be an integer from 1 to 1000')
        const recent = live.slice(-max).reverse()
        return { status: 200, body: { items: recent, cursor: String(seq), epoch, total: live.length, hasMore: live.length > recent.length } }
      }
      return { status: 200, body: { items: live, cursor: String(seq), epoch } }
    },
    changes(since: string | null, limit: string | null, collections: readonly string[] | null): ModelAnswer {
      const sinceText = since === null || since === '' ? '0' : since
      if (!CURSOR.test(sinceText) || BigInt(sinceText) > MAX_CURSOR) return error(400, 'bad_request', 'since must be a cursor returned by the server')
      const limitText = limit ?? '500'
      const max = LIMIT.test(limitText) ? Number(limitText) : 0
      if (max < 1 || max > 1000) return error(400, 'bad_request', 'limit must be an integer from 1 to 1000')
      // No cursor this feed handed out is beyond its head (whatever the collections filter).
      if (BigInt(sinceText) > BigInt(seq)) {
        return error(410, 'cursor_ahead', 'since is beyond the end of the change feed; pull in full', { epoch })
      }
      const from = Number(sinceText)
      const all = [...items.values()].filter((r) => r.seq > from && (!collections || collections.includes(r.collection))).sort((a, b) => a.seq - b.seq)
      const page = all.slice(0, max)
      const cursor = page.length > 0 ? String(page[page.length - 1]!.seq) : String(from)
      return { status: 200, body: { changes: page, cursor, hasMore: all.length > max, epoch } }
    },
    /** `POST /sync/changes` (protocol 4): the parameters of `GET /sync/changes` in a JSON body. */
    changesByPost(body: unknown): ModelAnswer {
      if (!isObject(body)) return error(400, 'bad_request', 'the body must be an object')
      const { since = '0', limit = 500, collections } = body
      if (typeof since !== 'string') return error(400, 'bad_request', 'since must be a cursor string returned by the server')
      if (typeof limit !== 'number' || !Number.isInteger(limit)) return error(400, 'bad_request', 'limit must be an integer from 1 to 1000')
      if (collections !== undefined && collections !== null) {
        if (!Array.isArray(collections) || !collections.every((c) => typeof c === 'string' && COLLECTION.test(c))) {
          return error(400, 'bad_request', 'collections must be a list of collection names')
        }
      }
      const list = Array.isArray(collections) && collections.length > 0 ? (collections as string[]) : null
      return this.changes(since, String(limit), list)
    },
    /** `GET /_test/history`: the record each applied operation produced, in the order applied. */
    history(): ModelAnswer {
      const ops = [...decided.values()].map((d) => d.record).sort((a, b) => a.seq - b.seq)
      return { status: 200, body: { ops } }
    },
    /** Every record, tombstones included, for assertions. */
    records(): RemoteRecord[] {
      return [...items.values()].sort((a, b) => a.seq - b.seq)
    },
    /** How many operations were applied (duplicates not counted): exactly-once checks. */
    get appliedOps(): number {
      return appliedOps
    },
    /** The head of the change feed (the cursor a full read ends at): what a real-time poke carries. */
    get head(): string {
      return String(seq)
    },
    /** The epoch: names this history; replaced by `reset()` and `rotateEpoch()`. */
    get epoch(): string {
      return epoch
    },
    /** Gives the server a new epoch, keeping its data (as after restoring a backup); returns it. */
    rotateEpoch(): string {
      epoch = newEpoch()
      return epoch
    },
    /** Wipes everything; a wiped server is a new one, with a new epoch. */
    reset(): void {
      items = new Map()
      decided = new Map()
      seq = 0
      appliedOps = 0
      epoch = newEpoch()
    },
  }
}

export type ContractModel = ReturnType<typeof createContractModel>
