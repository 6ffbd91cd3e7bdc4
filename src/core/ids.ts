import type { ItemId } from '../storage/types'

/** The queue, outbox and version key of an item: `<slice>:<id>`. */
export const itemKey = (slice: string, id: ItemId): string => `${slice}:${id}`

/** A lone UTF-16 surrogate: half of a character (an emoji cut by `.slice`), which no server can store. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Whether a string is well-formed UTF-16 (no lone surrogate). */
export function isWellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed
  return typeof native === 'function' ? native.call(text) : !LONE_SURROGATE.test(text)
}

/** The wire protocol's longest id (docs/protocol.md). */
export const MAX_WIRE_ID_LENGTH = 512

// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const CONTROL = /[\u0000-\u001f\u007f]/

/** Whether a string holds a control character, which the wire protocol refuses in ids. */
export const hasControlCharacter = (text: string): boolean => CONTROL.test(text)

/**
 * The id rule of every slice: a non-empty, well-formed string, or a finite number. (The wire
 * protocol adds at most 512 characters and no control characters, which the server checks.)
 */
export function validId(id: unknown): id is ItemId {
  if (typeof id === 'number') return Number.isFinite(id)
  return typeof id === 'string' && id.length > 0 && isWellFormed(id)
}
