import { expectTypeOf, test } from 'vitest'
import {
  rolledBack,
  selectItemSyncState,
  selectSliceSyncCounts,
  type ItemSyncState,
  type RollbackReason,
  type SlicePersistenceConfig,
  type SliceSyncCounts,
} from '../../src'
import { useItemSyncState } from '../../src/react'
import type { FileItem } from '../support/store'

test('the per-item state is a union of four strings; counts are numbers', () => {
  expectTypeOf(selectItemSyncState({}, 'files', 'a')).toEqualTypeOf<ItemSyncState>()
  expectTypeOf<ItemSyncState>().toEqualTypeOf<'synced' | 'pending' | 'conflict' | 'rejected'>()
  expectTypeOf(selectSliceSyncCounts({}, 'files')).toEqualTypeOf<SliceSyncCounts>()
  expectTypeOf(useItemSyncState).returns.toEqualTypeOf<ItemSyncState>()
})

test('rolledBack carries a typed reason; onReject and dependsOn are typed per item', () => {
  expectTypeOf(rolledBack.match).guards.toHaveProperty('payload').toHaveProperty('reason').toEqualTypeOf<RollbackReason>()
  expectTypeOf<SlicePersistenceConfig<FileItem>['onReject']>().toEqualTypeOf<'rollback' | 'keep' | undefined>()
  const config: SlicePersistenceConfig<FileItem> = { dependsOn: (file) => [{ slice: 'folders', id: file.name }] }
  expectTypeOf(config.dependsOn).parameter(0).toEqualTypeOf<FileItem>()
})
