// B13–B15: differential sync, field-level merge and compression, against the reference Flask server.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { request as httpRequest } from 'node:http'
import { gunzipSync, gzipSync } from 'node:zlib'
import { createPersistenceMiddleware, syncFromFlaskBulk, syncReducer, type SyncConflict } from 'redux-idb-sync'
import { createApiClient, createRemote } from 'redux-idb-sync/remote'
import { hasFlask, startFlaskServer, type FlaskServer } from '../../test/e2e/flaskServer'
import { fieldPatch } from '../../src/utils/fieldPatch'
import { compare, type Fact, type Result } from '../lib/harness'
import { uniqueName } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

interface Note {
  id: string
  title: string
  body: string
  tags: string[]
  meta: { words: number; pinned: boolean; folder: string }
}
const notes = createEntityAdapter<Note>()
const notesSlice = createSlice({ name: 'notes', initialState: notes.getInitialState(), reducers: { save: notes.upsertOne, saveMany: notes.upsertMany } })
const { save, saveMany } = notesSlice.actions

// Text with the statistics of prose (a vocabulary of 2,000 words, Zipf-like), from a fixed seed:
// gzip compresses it about as much as real notes, unlike a repeated string.
let seed = 42
const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
const vocabulary = Array.from({ length: 2000 }, (_, i) => {
  let word = ''
  const length = 2 + ((i * 7) % 9)
  for (let k = 0; k < length; k++) word += String.fromCharCode(97 + Math.floor(random() * 26))
  return word
})
function prose(bytes: number): string {
  let text = ''
  while (text.length < bytes) {
    const word = vocabulary[Math.floor(vocabulary.length * random() ** 2)]!
    text += random() < 0.07 ? `${word}. ` : `${word} `
  }
  return text.slice(0, bytes)
}
const note = (i: number, bodyBytes: number): Note => ({
  id: `n${i}`,
  title: `Note ${i}: ${prose(30)}`,
  body: prose(bodyBytes),
  tags: ['work', `t${i % 17}`],
  meta: { words: Math.round(bodyBytes / 6), pinned: i % 5 === 0, folder: `f${i % 9}` },
})

/** A fetch that records the body bytes of every push request as sent, and its encoding. */
function pushRecorder() {
  const pushes: Array<{ bytes: number; encoding: string | null }> = []
  const wrapped: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    if (request.url.endsWith('/sync/push'))
      pushes.push({ bytes: (await request.clone().arrayBuffer()).byteLength, encoding: request.headers.get('content-encoding') })
    return fetch(request)
  }
  return { pushes, fetch: wrapped }
}

function device(settings: Settings, baseUrl: string, fieldMerge: boolean, extra: { fetch?: typeof fetch; onConflict?: (c: SyncConflict) => void } = {}) {
  const persistence = createPersistenceMiddleware({
    dbName: uniqueName('b13'),
    indexedDB: settings.factory(),
    slices: { notes: { debounceMs: 0, fieldMerge, batchSize: 500 } },
    remote: createRemote({ baseUrl, timeoutMs: 30_000, batchSize: 500, ...extra }),
    onError: (e) => console.error('bench diffsync:', e.name, e.message),
  })
  const store = configureStore({
    reducer: { notes: notesSlice.reducer, sync: syncReducer },
    middleware: (g) => g({ serializableCheck: false, immutableCheck: false }).concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  const drained = async (): Promise<void> => {
    await persistence.flush()
    const end = Date.now() + 60_000
    while (store.getState().sync.outboxDepth > 0) {
      if (Date.now() > end) throw new Error('bench diffsync: the outbox did not drain')
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  return { store, persistence, drained }
}

const kb = (bytes: number): string => `${bytes.toLocaleString('en')} B`

/** B13: bytes on the wire for one edited field of a 10 kB note: whole values, patches, gzip. */
async function b13(settings: Settings, server: FlaskServer): Promise<Array<Result | Fact>> {
  const edits = settings.quick ? 3 : 20
  // today: whole values, plain (before protocol 3); gzip: whole values compressed; patch: fieldMerge.
  const modes = { today: { fieldMerge: false, compress: false }, gzip: { fieldMerge: false, compress: true }, patch: { fieldMerge: true, compress: true } }
  const sent: Record<keyof typeof modes, number[]> = { today: [], gzip: [], patch: [] }
  for (const [mode, how] of Object.entries(modes) as Array<[keyof typeof modes, (typeof modes)['today']]>) {
    const wire = pushRecorder()
    const d = device(settings, server.baseUrl, how.fieldMerge, { fetch: wire.fetch, ...(how.compress ? {} : { compressRequestsOver: false }) })
    await d.persistence.whenHydrated()
    d.store.dispatch(save({ ...note(1, 10_000), id: `${mode}-1` }))
    await d.drained()
    for (let e = 0; e < edits; e++) {
      const current = d.store.getState().notes.entities[`${mode}-1`]!
      const before = wire.pushes.length
      d.store.dispatch(save({ ...current, title: `${current.title.slice(0, 20)} edit ${e}` }))
      await d.drained()
      for (const p of wire.pushes.slice(before)) sent[mode].push(p.bytes)
    }
    await d.persistence.dispose()
  }
  const mean = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)
  const [today, gzipped, patch] = [mean(sent.today), mean(sent.gzip), mean(sent.patch)]
  // A one-field patch is far below remote.compressRequestsOver (1 kB): it goes out plain. What
  // gzip would make of it, for the record:
  const item = note(1, 10_000)
  const edited = { ...item, title: 'Note 1: edited' }
  const fp = fieldPatch(item, edited)!
  const patchBody = new TextEncoder().encode(
    JSON.stringify({
      clientId: 'x'.repeat(36),
      ops: [{ opId: 'x'.repeat(36), collection: 'notes', id: 'n1', type: 'patch', ...fp, baseVersion: 3, clientTime: 1795556666001 }],
    }),
  )
  const facts: Fact[] = [
    {
      id: 'B13',
      title: 'bytes per edit: the title changed in a 10 kB note (push body as sent, mean of the edits)',
      value: `whole ${kb(today)}; whole+gzip ${kb(gzipped)} (1/${(today / gzipped).toFixed(1)}); patch ${kb(patch)} = 1/${Math.round(today / patch)}`,
      target: '<= 1/20',
      met: today / patch >= 20,
      note: `${edits} edits per mode through the engine`,
    },
    {
      id: 'B13',
      title: 'patch + gzip for the same edit (not sent: below the 1 kB threshold)',
      value: `${kb(gzipSync(patchBody).byteLength)} vs ${kb(patchBody.byteLength)} plain`,
      target: 'reported',
      met: null,
    },
  ]
  // CPU: a patch is computed at push time from the confirmed value and the new item, which come
  // from IndexedDB and share no structure (hence the clone): every field is compared.
  const base = structuredClone(item)
  const cpu = await compare({
    id: 'B13',
    title: 'CPU per pushed edit: diff + serialise the patch vs serialise the whole 10 kB note',
    ours: { name: 'fieldPatch + JSON.stringify', run: () => JSON.stringify(fieldPatch(base, edited)) },
    baseline: { name: 'JSON.stringify(whole)', run: () => JSON.stringify(edited) },
    report: 'overhead',
    rounds: settings.rounds,
    iterations: settings.quick ? 50 : 2000,
    note: 'no shared structure between base and new item',
  })
  return [...facts, cpu]
}

/** B14: two devices edit different fields of the same 100 notes at once: conflicts today vs with field merge. */
async function b14(settings: Settings, server: FlaskServer): Promise<Fact[]> {
  const n = settings.quick ? 20 : 100
  const outcome: Record<'today' | 'merge', { conflicts: number; bothKept: number }> = {
    today: { conflicts: 0, bothKept: 0 },
    merge: { conflicts: 0, bothKept: 0 },
  }
  for (const mode of ['today', 'merge'] as const) {
    await server.reset()
    let conflicts = 0
    const onConflict = (): void => void conflicts++
    const alice = device(settings, server.baseUrl, mode === 'merge', { onConflict })
    const bob = device(settings, server.baseUrl, mode === 'merge', { onConflict })
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    alice.store.dispatch(saveMany(Array.from({ length: n }, (_, i) => note(i, 2_000))))
    await alice.drained()
    await bob.store.dispatch(syncFromFlaskBulk())
    // Both edit before either sees the other's edits; Bob's arrive first.
    const a = Object.values(alice.store.getState().notes.entities).map((x) => ({ ...x!, title: `alice ${x!.id}` }))
    const b = Object.values(bob.store.getState().notes.entities).map((x) => ({ ...x!, body: `bob ${x!.id}` }))
    bob.store.dispatch(saveMany(b))
    await bob.drained()
    alice.store.dispatch(saveMany(a))
    await alice.drained()
    const pulled = await createApiClient({ baseUrl: server.baseUrl }).pull(['notes'])
    const kept = pulled.items.filter((r) => {
      const v = r.value as Note
      return v.title === `alice ${r.id}` && v.body === `bob ${r.id}`
    }).length
    outcome[mode] = { conflicts, bothKept: kept }
    await alice.persistence.dispose()
    await bob.persistence.dispose()
  }
  return [
    {
      id: 'B14',
      title: `conflicts: two devices edit different fields of the same ${n} notes (server-wins)`,
      value: `today ${outcome.today.conflicts} conflicts, both edits kept on ${outcome.today.bothKept}/${n}; fieldMerge ${outcome.merge.conflicts} conflicts, both kept on ${outcome.merge.bothKept}/${n}`,
      target: '0 conflicts, both edits kept',
      met: outcome.merge.conflicts === 0 && outcome.merge.bothKept === n,
    },
  ]
}

/** GET over node:http, so the bytes counted are the bytes on the wire (fetch would inflate them). */
function rawGet(url: string, gzip: boolean): Promise<{ wire: number; items: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const raw = Buffer.concat(chunks)
        const text = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString()
        if (gzip !== (res.headers['content-encoding'] === 'gzip')) reject(new Error('B15: unexpected Content-Encoding'))
        resolve({ wire: raw.byteLength, items: (JSON.parse(text) as { items: unknown[] }).items.length })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** B15: a full pull of 10,000 notes (1–4 kB of prose each), with and without gzip. */
async function b15(settings: Settings, server: FlaskServer): Promise<Array<Result | Fact>> {
  const n = settings.quick ? 500 : 10_000
  await server.reset()
  const api = createApiClient({ baseUrl: server.baseUrl, timeoutMs: 60_000 })
  for (let start = 0; start < n; start += 500) {
    const ops = Array.from({ length: Math.min(500, n - start) }, (_, k) => {
      const i = start + k
      return {
        opId: `b15-${i}`,
        collection: 'notes',
        id: `n${i}`,
        type: 'put' as const,
        value: note(i, 1_000 + ((i * 37) % 3_000)),
        baseVersion: null,
        clientTime: 1,
      }
    })
    await api.push('b15', ops, { compress: true })
  }
  const url = `${server.baseUrl}/sync/pull?collections=notes`
  const plain = await rawGet(url, false)
  const packed = await rawGet(url, true)
  if (plain.items !== n || packed.items !== n) throw new Error('B15: the pull did not return every note')
  const time = await compare({
    id: 'B15',
    title: `full pull of ${n.toLocaleString('en')} notes on localhost, gzip vs plain (request to parsed JSON)`,
    ours: { name: 'gzip', run: () => rawGet(url, true) },
    baseline: { name: 'plain', run: () => rawGet(url, false) },
    report: 'overhead',
    rounds: settings.quick ? 2 : 6,
    iterations: settings.quick ? 1 : 2,
    note: 'server compresses (level 6), client inflates; loopback, so no transfer time is saved',
  })
  const mbit = (bytes: number): string => `${((bytes * 8) / 10e6).toFixed(1)} s`
  return [
    {
      id: 'B15',
      title: `bytes of a full pull of ${n.toLocaleString('en')} notes (1–4 kB of prose each)`,
      value: `gzip ${kb(packed.wire)} vs plain ${kb(plain.wire)} = 1/${(plain.wire / packed.wire).toFixed(1)}; at 10 Mbit/s ${mbit(packed.wire)} vs ${mbit(plain.wire)}`,
      target: 'reported',
      met: null,
    },
    time,
  ]
}

/** B13–B15 against one Flask server. */
export async function diffsync(settings: Settings, which: readonly string[]): Promise<Array<Result | Fact>> {
  if (!hasFlask()) {
    return [
      {
        id: 'B13',
        title: 'differential sync against the reference Flask server',
        value: 'not run: python3 -c "import flask" fails here',
        target: '–',
        met: null,
      },
    ]
  }
  const server = await startFlaskServer()
  try {
    const out: Array<Result | Fact> = []
    if (which.includes('B13')) out.push(...(await b13(settings, server)))
    if (which.includes('B14')) out.push(...(await b14(settings, server)))
    if (which.includes('B15')) out.push(...(await b15(settings, server)))
    return out
  } finally {
    await server.close()
  }
}
