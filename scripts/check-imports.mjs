#!/usr/bin/env node
// Checks the import rules of src/ (docs/architecture.md):
// 1. no cycle between folders (a folder is src/<name>/; src/remote/http is part of remote);
// 2. a folder imports only the shared layers (core, utils, storage, errors) and the folders
//    ALLOWED lists for it, and those only through their FACES where listed; the entry points
//    (src/index.ts, react/, testing/) may import any folder;
// 3. where TYPE_ONLY says so, only types (`import type`): persistence/ never loads remote/'s code.
// Only relative imports ('./x', '../x/...') are followed; packages are ignored.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src')
const SHARED = new Set(['core', 'utils', 'storage', 'errors'])
const ENTRY = new Set(['.', 'react', 'testing'])
/** Dependencies beyond the shared layers, each with its reason. */
const ALLOWED = {
  // Types only (TYPE_ONLY): a persistence instance runs the sync engine the remote plugin builds
  // (RemotePlugin, core/ports.ts) and implements its SyncHost port; neither imports the other's code.
  persistence: ['remote', 'tabs'],
  // The shared layers among themselves, one way: core -> storage -> utils -> errors.
  core: ['storage', 'utils', 'errors'],
  storage: ['utils', 'errors'],
  utils: ['errors'],
  errors: [],
  autoSync: ['tabs'],
}

/** Folders that other (non-entry) folders may import only through these files: the rest is internal. */
const FACES = {
  remote: ['remote/createSyncEngine'],
}

/**
 * Imports that must be `import type` (erased at build): the core entry never loads the sync
 * engine or ky, so a local-only app does not bundle them (its size-limit budget checks it).
 */
const TYPE_ONLY = {
  persistence: ['remote'],
}

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return files(path)
    return /\.(ts|tsx)$/.test(name) ? [path] : []
  })
}

/** The folder of a file, or of an import target (a directory import such as '../errors' is that folder). */
const folderOf = (path) => {
  const rel = relative(root, path)
  if (rel.includes(sep)) return rel.split(sep)[0]
  try {
    if (statSync(path).isDirectory()) return rel
  } catch {
    // a file named without its extension
  }
  return '.'
}

const importPattern = /(?:^|\n)\s*((?:import|export)\s[^'"]*?)from\s+['"](\.{1,2}\/[^'"]+)['"]/g
/** `import type { A }` or `import { type A, type B }`: nothing of the target is loaded at run time. */
const typeOnly = (clause) => {
  if (/^(?:import|export)\s+type\s/.test(clause)) return true
  const names = /^(?:import|export)\s*\{([^}]*)\}\s*$/
    .exec(clause)?.[1]
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean)
  return names !== undefined && names.length > 0 && names.every((n) => n.startsWith('type '))
}
const edges = new Map() // folder -> Map(folder -> first file that imports it)
const problems = []
for (const file of files(root)) {
  const from = folderOf(file)
  const text = readFileSync(file, 'utf8')
  for (const match of text.matchAll(importPattern)) {
    const target = resolve(dirname(file), match[2])
    if (!target.startsWith(root)) continue
    const to = folderOf(target)
    if (to === from) continue
    if (!edges.has(from)) edges.set(from, new Map())
    if (!edges.get(from).has(to)) edges.get(from).set(to, relative(root, file))
    if (ENTRY.has(from)) continue
    if (TYPE_ONLY[from]?.includes(to) && !typeOnly(match[1].trim())) {
      problems.push(`${relative(root, file)} imports ${match[2]} at run time: ${from}/ may import only types of ${to}/ (import type)`)
      continue
    }
    if (SHARED.has(to) && !SHARED.has(from)) continue
    const face = FACES[to]
    if (face && !face.includes(relative(root, target).split(sep).join('/'))) {
      problems.push(`${relative(root, file)} imports ${match[2]}: only ${face.join(', ')} of ${to}/ may be imported from outside it`)
      continue
    }
    if (ALLOWED[from]?.includes(to)) continue
    problems.push(`${relative(root, file)} imports ${match[2]}: ${from}/ may not import ${to}/`)
  }
}

// Folder-level cycles, by depth-first search.
const state = new Map()
const stack = []
function visit(folder) {
  state.set(folder, 'open')
  stack.push(folder)
  for (const next of edges.get(folder)?.keys() ?? []) {
    if (state.get(next) === 'open') {
      const cycle = [...stack.slice(stack.indexOf(next)), next]
      const via = cycle.slice(0, -1).map((f, i) => `${f} -> ${cycle[i + 1]} (${edges.get(f).get(cycle[i + 1])})`)
      problems.push(`folder cycle: ${via.join(', ')}`)
    } else if (!state.has(next)) visit(next)
  }
  stack.pop()
  state.set(folder, 'done')
}
for (const folder of edges.keys()) if (!state.has(folder)) visit(folder)

if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
const summary = [...edges].map(([f, to]) => `${f} -> ${[...to.keys()].sort().join(', ')}`).sort()
console.log(`check-imports: no folder cycles, every import allowed\n  ${summary.join('\n  ')}`)
