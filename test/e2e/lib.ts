// End-to-end tests run the BUILT package (dist/), exactly as users get it; its types are the
// source's. The path is computed so type-checking works before the build exists.
import type * as Source from '../../src'

const built = '../../dist/index.js'
export const lib = (await import(/* @vite-ignore */ built)) as typeof Source
