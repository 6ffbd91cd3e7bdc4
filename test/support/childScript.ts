import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'

const root = join(import.meta.dirname, '..', '..')

/**
 * Runs `source` (an ES module that imports the library as `redux-idb-sync`) in a child Node
 * process, the library bundled from src/ by esbuild and everything else from node_modules, and
 * reports whether the process ended by itself within `timeoutMs` (else it is killed).
 */
export async function runChildScript(
  source: string,
  timeoutMs: number,
): Promise<{ exited: boolean; code: number | null; stdout: string; stderr: string; ms: number }> {
  const dir = mkdtempSync(join(root, 'node_modules', '.ris-child-'))
  try {
    const entry = join(dir, 'entry.mjs')
    writeFileSync(entry, source)
    const out = join(dir, 'bundle.mjs')
    await build({
      entryPoints: [entry],
      outfile: out,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'silent',
      alias: { 'redux-idb-sync': join(root, 'src', 'index.ts') },
      external: ['@reduxjs/toolkit', 'fake-indexeddb', 'fake-indexeddb/*', 'idb', 'ky'],
    })
    const started = Date.now()
    return await new Promise((resolve) => {
      const child = spawn(process.execPath, [out], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        resolve({ exited: signal === null, code, stdout, stderr, ms: Date.now() - started })
      })
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
