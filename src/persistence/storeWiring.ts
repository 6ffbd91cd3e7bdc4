import { HydrationError, InvalidOptionError, type SyncError } from '../errors'
import { closestName } from '../utils/optionKeys'

/**
 * What is wrong with how the store was put together, found when the middleware first sees the
 * store (during `configureStore`), on every run whatever the database holds:
 *
 * - without `persistence.enhancer`, hydration and pulled data cannot replace slice collections.
 *   On an empty database nothing would need replacing yet, so without this check the first run
 *   looked fine and the mistake surfaced only on the next one. Every slice gets the same error.
 * - a configured slice that is not a key of the root state (a typo such as `filez`) would
 *   otherwise hydrate "successfully" and persist nothing, forever.
 *
 * Returns the error of each slice that cannot work, by slice name; empty when all is well.
 */
export function storeWiringErrors(enhancerInstalled: boolean, sliceNames: readonly string[], rootState: unknown): Map<string, SyncError> {
  const errors = new Map<string, SyncError>()
  if (sliceNames.length === 0) return errors
  if (!enhancerInstalled) {
    const error = new HydrationError(
      'persistence.enhancer is missing from the store: add it with `enhancers: (getDefault) => getDefault().concat(persistence.enhancer)`; ' +
        'without it hydration cannot put stored items into the store, so nothing is hydrated or written',
    )
    for (const name of sliceNames) errors.set(name, error)
    return errors
  }
  if (typeof rootState !== 'object' || rootState === null) return errors
  const keys = Object.keys(rootState)
  for (const name of sliceNames) {
    if (Object.prototype.hasOwnProperty.call(rootState, name)) continue
    const suggestion = closestName(name, keys)
    errors.set(
      name,
      new InvalidOptionError(
        `slices.${name}`,
        `"${name}" is not a key of the store's root state (${keys.length > 0 ? `its keys: ${keys.join(', ')}` : 'it has no keys'})` +
          `${suggestion ? `; did you mean ${suggestion}?` : ''} Nothing of this slice is hydrated or persisted. ` +
          'A slice injected later (combineSlices().inject) can be configured with enabled: false and enabled once injected.',
      ),
    )
  }
  return errors
}
