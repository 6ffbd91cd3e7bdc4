// Packaging check: build, pack the tarball exactly as npm would publish it, then
// run publint (strict) and arethetypeswrong on that tarball, and size-limit on
// the built core entry. Any failure exits non-zero.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts })
const bin = (name) => join('node_modules', '.bin', name)

run('npm', ['run', 'build', '--silent'])
const dir = mkdtempSync(join(tmpdir(), 'ris-pack-'))
try {
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { encoding: 'utf8' })
  const tarball = join(dir, out.trim().split('\n').pop())
  run(bin('publint'), ['--strict', tarball])
  run(bin('attw'), [tarball, '--profile', 'node16'])
  run(bin('size-limit'), [])
} finally {
  rmSync(dir, { recursive: true, force: true })
}
