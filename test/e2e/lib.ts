// End-to-end tests run the BUILT package (dist/), exactly as users get it; its types are the
// source's. The paths are computed so type-checking works before the build exists.
import type * as Source from '../../src'
import type * as RemoteSource from '../../src/remote'

const built = '../../dist/index.js'
export const lib = (await import(/* @vite-ignore */ built)) as typeof Source
/** The `redux-idb-sync/remote` entry: `createRemote` for the instances' `remote` option. */
const builtRemote = '../../dist/remote.js'
export const remoteLib = (await import(/* @vite-ignore */ builtRemote)) as typeof RemoteSource
