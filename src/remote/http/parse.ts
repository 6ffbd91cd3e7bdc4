import { MAX_VALUE_DEPTH, deeperThan } from '../../core/depth'
import { MAX_WIRE_ID_LENGTH, hasControlCharacter } from '../../core/ids'
import { isObject } from '../../utils/isObject'
import { stripDangerousKeys } from '../../utils/serializable'
import type { ChangesResponse, HealthResponse, PullResponse, PushResponse, PushResult, RemoteRecord } from './protocol'

/** Thrown inside validation; the client turns it into a MalformedResponseError. */
export class ShapeError extends Error {
  constructor(readonly problem: string) {
    super(problem)
  }
}

type Json = Record<string, unknown>

function expect(condition: boolean, problem: string): asserts condition {
  if (!condition) throw new ShapeError(problem)
}

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value)

/**
 * Checks a record and returns a copy whose value has no prototype-reaching keys. Every field the
 * client relies on is checked; anything else the server adds is ignored.
 */
export function parseRecord(value: unknown, where: string): RemoteRecord {
  expect(isObject(value), `${where} is not an object`)
  expect(typeof value.collection === 'string', `${where}.collection is not a string`)
  expect(typeof value.id === 'string', `${where}.id is not a string`)
  expect(
    value.id.length >= 1 && value.id.length <= MAX_WIRE_ID_LENGTH && !hasControlCharacter(value.id),
    `${where}.id is not 1 to 512 characters without control characters`,
  )
  expect(isInt(value.version) && value.version >= 0, `${where}.version is not a non-negative integer`)
  expect(typeof value.updatedAt === 'number', `${where}.updatedAt is not a number`)
  expect(typeof value.deleted === 'boolean', `${where}.deleted is not a boolean`)
  expect(value.deleted || (value.value !== undefined && value.value !== null), `${where}.value is missing or null`)
  // Checked before stripDangerousKeys, whose recursion must only ever see bounded depth.
  expect(value.deleted || !deeperThan(value.value, MAX_VALUE_DEPTH), `${where}.value is nested deeper than ${MAX_VALUE_DEPTH} levels`)
  return {
    collection: value.collection,
    id: value.id,
    version: value.version,
    updatedAt: value.updatedAt,
    clientTime: typeof value.clientTime === 'number' ? value.clientTime : 0,
    deleted: value.deleted,
    value: value.deleted ? null : stripDangerousKeys(value.value),
    seq: isInt(value.seq) ? value.seq : 0,
    ...(typeof value.opId === 'string' ? { opId: value.opId } : {}),
  }
}

/** The optional `epoch` of protocol 2: absent, or a non-empty string of at most 128 characters. */
function parseEpoch(body: Json): { epoch?: string } {
  if (body.epoch === undefined) return {}
  expect(typeof body.epoch === 'string' && body.epoch.length > 0 && body.epoch.length <= 128, 'epoch is not a string of 1 to 128 characters')
  return { epoch: body.epoch }
}

export function parseHealth(body: unknown): HealthResponse {
  expect(isObject(body), 'health body is not an object')
  expect(body.status === 'ok', 'health status is not "ok"')
  return {
    status: 'ok',
    serverTime: typeof body.serverTime === 'number' ? body.serverTime : 0,
    protocol: isInt(body.protocol) ? body.protocol : 1,
    ...parseEpoch(body),
  }
}

function parseCursor(body: Json): string {
  expect(typeof body.cursor === 'string' && body.cursor.length > 0, 'cursor is not a non-empty string')
  return body.cursor
}

export function parsePush(body: unknown, opIds: readonly string[]): PushResponse {
  expect(isObject(body), 'push body is not an object')
  expect(Array.isArray(body.results), 'results is not an array')
  const results = body.results as unknown[]
  expect(results.length === opIds.length, `results has ${results.length} entries for ${opIds.length} operations`)
  const parsed = results.map((raw, i): PushResult => {
    const where = `results[${i}]`
    expect(isObject(raw), `${where} is not an object`)
    expect(raw.opId === opIds[i], `${where}.opId does not match the operation sent`)
    const opId = raw.opId as string
    switch (raw.status) {
      case 'applied':
      case 'duplicate':
        return { opId, status: raw.status, record: parseRecord(raw.record, `${where}.record`) }
      case 'conflict':
        return {
          opId,
          status: 'conflict',
          current: raw.current === null || raw.current === undefined ? null : parseRecord(raw.current, `${where}.current`),
          // Protocol 3: the fields a patch changed that the server changed too (informational).
          ...(Array.isArray(raw.fields) && raw.fields.every((f) => typeof f === 'string') ? { fields: raw.fields as string[] } : {}),
        }
      case 'rejected': {
        const error = isObject(raw.error) ? raw.error : {}
        return {
          opId,
          status: 'rejected',
          error: { error: String(error.error ?? 'rejected'), message: String(error.message ?? 'rejected by the server') },
        }
      }
      default:
        throw new ShapeError(`${where}.status is not applied, duplicate, conflict or rejected`)
    }
  })
  return { results: parsed, cursor: parseCursor(body), ...parseEpoch(body) }
}

export function parsePull(body: unknown): PullResponse {
  expect(isObject(body), 'pull body is not an object')
  expect(Array.isArray(body.items), 'items is not an array')
  return {
    items: (body.items as unknown[]).map((r, i) => parseRecord(r, `items[${i}]`)),
    cursor: parseCursor(body),
    ...parseEpoch(body),
    ...(typeof body.total === 'number' && Number.isInteger(body.total) && body.total >= 0 ? { total: body.total } : {}),
    ...(typeof body.hasMore === 'boolean' ? { hasMore: body.hasMore } : {}),
  }
}

export function parseChanges(body: unknown): ChangesResponse {
  expect(isObject(body), 'changes body is not an object')
  expect(Array.isArray(body.changes), 'changes is not an array')
  expect(typeof body.hasMore === 'boolean', 'hasMore is not a boolean')
  return {
    changes: (body.changes as unknown[]).map((r, i) => parseRecord(r, `changes[${i}]`)),
    cursor: parseCursor(body),
    hasMore: body.hasMore,
    ...parseEpoch(body),
  }
}

/**
 * An incremental pull's page, asked for `since`. A feed that promises more but does not move its
 * cursor would be asked the same page forever: one page without progress is enough to call it broken.
 */
export function parseChangesPage(body: unknown, since: string): ChangesResponse {
  const page = parseChanges(body)
  if (page.hasMore && page.cursor === since) throw new ShapeError(`hasMore is true but the cursor did not move from "${since}"`)
  return page
}

/** The `error` code of an error body, if it is one. */
export function errorCode(body: unknown): string | undefined {
  return isObject(body) && typeof body.error === 'string' ? body.error : undefined
}

/** The `message` of a JSON error body, when it has one (at most 500 characters: it is shown to users). */
export function errorMessage(body: unknown): string | undefined {
  return isObject(body) && typeof body.message === 'string' ? body.message.slice(0, 500) : undefined
}

export function conflictCurrent(body: unknown): RemoteRecord | null {
  expect(isObject(body), 'conflict body is not an object')
  return body.current === null || body.current === undefined ? null : parseRecord(body.current, 'current')
}
