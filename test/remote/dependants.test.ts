import { describe, expect, test } from 'vitest'
import { selectItemSyncState, type SlicePersistenceConfig } from '../../src'
import { readStore, until } from '../support/instrumentedStore'
import { rejectOps, type PushedOp } from '../support/rejecting'
import { addItem, type FileItem } from '../support/store'
import { useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
type Client = ReturnType<typeof client>

// A file refers to its folder (another item of the same slice) through `body.folder`.
const files = {
  dependsOn: (item: FileItem) => {
    const folder = (item.body as { folder?: string } | undefined)?.folder
    return folder ? [{ slice: 'files', id: folder }] : []
  },
} as SlicePersistenceConfig
const sync = (c: Client) => c.store.getState().sync
const connected = (c: Client) => until(() => sync(c).status.flaskConnected, 'the connection')

async function offlineFolderAndFile(c: Client, folderName: string): Promise<void> {
  await c.persistence.whenHydrated()
  await connected(c)
  server.down()
  c.store.dispatch(addItem({ id: 'folder', name: folderName }))
  c.store.dispatch(addItem({ id: 'file', name: 'report', body: { folder: 'folder' } }))
  await c.persistence.flush()
  server.up()
}

describe('dependent operations (dependsOn)', () => {
  test('a change waits until the create it depends on is acknowledged: never in the same push', async () => {
    const c = client({ files })
    const pushes: PushedOp[][] = []
    rejectOps(msw, server, () => null)
    const { http } = await import('msw')
    msw.use(
      http.post(/\/sync\/push$/, async ({ request }) => {
        pushes.push(((await request.clone().json()) as { ops: PushedOp[] }).ops)
        return undefined
      }),
    )
    await offlineFolderAndFile(c, 'fine')
    await c.persistence.sync!.checkConnection()
    await until(() => sync(c).outboxDepth === 0 && server.model.records().length === 2, 'both pushed')
    const folderPush = pushes.findIndex((ops) => ops.some((op) => op.id === 'folder'))
    const filePush = pushes.findIndex((ops) => ops.some((op) => op.id === 'file'))
    expect(folderPush).toBeGreaterThanOrEqual(0)
    expect(filePush).toBeGreaterThan(folderPush)
  })

  test('a rejected create dead-letters its dependants with a clear reason, and both roll back', async () => {
    const c = client({ files })
    const refused = rejectOps(msw, server, (op) => (op.id === 'folder' ? 'folder names must not be empty' : null))
    await offlineFolderAndFile(c, '')
    await c.persistence.sync!.checkConnection()
    await until(() => sync(c).deadLetters.length === 2, 'both dead letters')
    // Only the folder reached the server; the file never did.
    expect(refused.map((op) => op.id)).toEqual(['folder'])
    expect(server.model.records()).toEqual([])
    const letter = sync(c).deadLetters.find((d) => d.id === 'file')!
    expect(letter).toMatchObject({ code: 'dependency_rejected', dependsOn: 'files:folder', rolledBack: true })
    expect(letter.message).toContain('files:folder was rejected')
    expect(c.store.getState().files.entities).toEqual({})
    expect([...(await readStore(c.factory, 'files', 'synced')).keys()]).toEqual([])
    expect(selectItemSyncState(c.store.getState(), 'files', 'file')).toBe('rejected')
    expect(sync(c).outboxDepth).toBe(0)
  })

  test('a change made after the create was rejected is dead-lettered when it would be pushed', async () => {
    const c = client({ files })
    rejectOps(msw, server, (op) => (op.id === 'folder' ? 'no' : null))
    await c.persistence.whenHydrated()
    await connected(c)
    c.store.dispatch(addItem({ id: 'folder', name: 'x' }))
    await c.persistence.flush()
    await until(() => sync(c).deadLetters.length === 1, 'the folder dead letter')
    c.store.dispatch(addItem({ id: 'late', name: 'late', body: { folder: 'folder' } }))
    await c.persistence.flush()
    await until(() => sync(c).deadLetters.length === 2, 'the dependant dead letter')
    expect(sync(c).deadLetters.find((d) => d.id === 'late')).toMatchObject({ code: 'dependency_rejected', dependsOn: 'files:folder' })
    expect(server.model.records()).toEqual([])
  })
})
