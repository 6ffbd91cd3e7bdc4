import type { Middleware } from '@reduxjs/toolkit'
import { companionMiddleware as findPersistence } from '../core/companion'
import type { PersistenceMiddleware } from './types'

/** `companionMiddleware` (core/companion.ts) for code that holds the full instance type. */
export const companionMiddleware: (onFound: (persistence: PersistenceMiddleware) => void, isDisposed: () => boolean) => Middleware = findPersistence
