/**
 * One registry per process, whichever copy of the library asks. A package with an ESM and a CJS
 * build is often loaded twice in one process (an ESM app with a CJS dependency, a test runner):
 * module-level registries would then split into two, and a CJS `disablePersistence('files')`
 * would not find an instance the ESM copy created. So they live on `globalThis` under one
 * versioned symbol: a change to the shape of a slot gets a new version instead of sharing
 * an incompatible one.
 */
const KEY = Symbol.for('redux-idb-sync.registry.v1')

type Slots = Record<string, unknown>

/** The shared slot `name`, created by `create` the first time any copy asks for it. */
export function sharedSlot<T>(name: string, create: () => T): T {
  const holder = globalThis as unknown as Record<symbol, Slots | undefined>
  const slots = (holder[KEY] ??= Object.create(null) as Slots)
  if (!(name in slots)) slots[name] = create()
  return slots[name] as T
}
