import { describe, expect, test } from 'vitest'
import {
  createPersistenceMiddleware,
  isValidationError,
  pullFlaskChanges,
  syncToFlaskBulk,
  type StandardSchemaLike,
  type SlicePersistenceConfig,
  type ValidationError,
} from '../../src'
import { readStore } from '../support/instrumentedStore'
import { addItem, type FileItem } from '../support/store'
import { useMockSync } from '../support/synced'

const { client } = useMockSync()

/** A minimal Standard Schema, as zod or valibot expose one. */
const fileSchema: StandardSchemaLike<FileItem> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) => {
      const v = value as Partial<FileItem> | null
      if (typeof v?.id !== 'string') return { issues: [{ message: 'id must be a string', path: ['id'] }] }
      if (typeof v.name !== 'string') return { issues: [{ message: 'name must be a string', path: ['name'] }] }
      return { value: v as FileItem }
    },
  },
}

const validators: Array<[string, NonNullable<SlicePersistenceConfig['validate']>]> = [
  ['a Standard Schema', fileSchema],
  ['a function', (item) => typeof (item as FileItem).name === 'string' || 'name must be a string'],
]

describe.each(validators)('validate with %s', (_, validate) => {
  test('hydration skips stored items that fail it, reports them, and leaves storage alone', async () => {
    const writer = client({ dbName: 'v', remote: null })
    await writer.persistence.whenHydrated()
    writer.store.dispatch(addItem({ id: 'good', name: 'fine' }))
    writer.store.dispatch(addItem({ id: 'bad', name: 42 as unknown as string }))
    await writer.persistence.dispose()

    const reader = client({ dbName: 'v', remote: null, factory: writer.factory, files: { validate } })
    await reader.persistence.whenHydrated()
    expect(reader.store.getState().files.ids).toEqual(['good'])
    const errors = reader.errors.filter(isValidationError) as ValidationError[]
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ source: 'hydration', key: 'files:bad', slice: 'files' })
    expect(errors[0]!.message).not.toContain('42') // the item's data is never in messages
    expect((await readStore(writer.factory, 'files', 'v')).get('bad')).toEqual({ id: 'bad', name: 42 })
  })

  test('pulled server items that fail it are neither merged nor written', async () => {
    const other = client({ dbName: 'other' })
    await other.persistence.whenHydrated()
    other.store.dispatch(addItem({ id: 'ok', name: 'from the server' }))
    other.store.dispatch(addItem({ id: 'evil', name: { nested: true } as unknown as string }))
    await other.persistence.flush()
    await other.store.dispatch(syncToFlaskBulk())

    const me = client({ dbName: 'me', files: { validate } })
    await me.persistence.whenHydrated()
    me.store.dispatch(addItem({ id: 'evil', name: 'my own' }))
    await me.persistence.flush()
    await me.store.dispatch(pullFlaskChanges())

    expect(me.store.getState().files.entities.ok).toEqual({ id: 'ok', name: 'from the server' })
    expect(me.store.getState().files.entities.evil).toEqual({ id: 'evil', name: 'my own' })
    expect(me.errors.filter(isValidationError).map((e) => (e as ValidationError).source)).toContain('server')
    expect((await readStore(me.factory, 'files', 'me')).get('evil')).toEqual({ id: 'evil', name: 'my own' })
  })
})

test('validate is checked up front', () => {
  expect(() => createPersistenceMiddleware({ slices: { files: { validate: 42 as unknown as SlicePersistenceConfig['validate'] } } })).toThrow(
    /slices\.files\.validate/,
  )
})
