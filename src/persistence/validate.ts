import { itemKey } from '../core/ids'
import { ValidationError } from '../errors'
import type { ItemId } from '../storage/types'

/**
 * The part of the Standard Schema interface (https://standardschema.dev) we use, so zod,
 * valibot, arktype and others plug in without this library depending on any of them.
 */
export interface StandardSchemaLike<Item = unknown> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    validate(value: unknown): StandardResult<Item> | Promise<StandardResult<Item>>
  }
}

type StandardResult<Item> =
  | { readonly value: Item; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> }> }

/**
 * A slice's item validator: a Standard Schema (zod 3.24+, valibot, arktype, ...) or a function
 * returning `true` for a valid item and `false` or a message for an invalid one.
 */
export type ItemValidator<Item = unknown> = StandardSchemaLike<Item> | ((item: unknown) => boolean | string)

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string =>
  path && path.length > 0 ? `${path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')}: ` : ''

/** The validator's messages for `item`, or `null` when it is valid. Never throws. */
export function issuesOf(validator: ItemValidator, item: unknown): string[] | null {
  try {
    if (typeof validator === 'function') {
      const verdict = validator(item)
      if (verdict === true) return null
      return [typeof verdict === 'string' ? verdict : 'rejected by validate']
    }
    const result = validator['~standard'].validate(item)
    // Hydration and pulls apply items synchronously, in one step with their writes.
    if (result instanceof Promise) return ['asynchronous schemas are not supported; use a synchronous one']
    if (!result.issues) return null
    return result.issues.map((issue) => `${pathOf(issue.path)}${issue.message}`)
  } catch (error) {
    return [`validate threw: ${error instanceof Error ? error.message : String(error)}`]
  }
}

/** A `ValidationError` for an invalid item, or `null`; the message names the key, never the data. */
export function validationError(
  validator: ItemValidator | undefined,
  slice: string,
  id: ItemId,
  item: unknown,
  source: 'hydration' | 'server',
): ValidationError | null {
  if (!validator) return null
  const issues = issuesOf(validator, item)
  if (!issues) return null
  const from = source === 'hydration' ? 'stored' : 'server'
  return new ValidationError(`the ${from} item ${slice}:${id} failed validation and was not merged: ${issues.slice(0, 3).join('; ')}`, {
    slice,
    key: itemKey(slice, id),
    source,
    issues,
  })
}
