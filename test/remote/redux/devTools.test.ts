import { describe, expect, test } from 'vitest'
import { remoteApplied, rolledBack, syncActionSanitizer, syncActions } from '../../../src'
import { hydrateSlice } from '../../../src/core/actions'

describe('syncActionSanitizer (Redux DevTools)', () => {
  test('drops item bodies and keeps types, keys, ids, versions and reasons', () => {
    const secret = { id: 'a', text: 'private' }
    const rollback = rolledBack({
      key: 'notes:a',
      slice: 'notes',
      id: 'a',
      opId: 'op',
      reason: { cause: 'rejected', status: 422, code: 'validation', message: 'too long' },
      rejected: { type: 'put', value: secret },
      restored: { value: secret, version: 3 },
    })
    const sanitized = [
      syncActionSanitizer(rollback),
      syncActionSanitizer(remoteApplied({ slice: 'notes', puts: [['a', secret]], deletes: ['b'] }, 1)),
      syncActionSanitizer(hydrateSlice({ slice: 'notes', collection: { a: secret }, count: 1 }, 1)),
    ]
    expect(JSON.stringify(sanitized)).not.toContain('private')
    expect(sanitized[0]).toMatchObject({
      type: 'redux-idb-sync/rolledBack',
      payload: { key: 'notes:a', reason: { message: 'too long' }, restored: { version: 3 } },
    })
    expect(sanitized[1]).toMatchObject({ payload: { puts: [['a', '<item omitted>']], deletes: ['b'] } })
    expect(sanitized[2]).toMatchObject({ payload: { slice: 'notes', count: 1 } })
    // The action itself is untouched; other actions pass as they are.
    expect(rollback.payload.rejected.value).toBe(secret)
    const other = syncActions.outboxChanged(3)
    expect(syncActionSanitizer(other)).toBe(other)
  })
})
