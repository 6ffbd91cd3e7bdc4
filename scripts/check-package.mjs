// Packaging check: build, pack the tarball exactly as npm would publish it, then
// run publint (strict) and arethetypeswrong (every resolution: node10, node16 from CJS and ESM,
// bundler) on that tarball, check that the packed README and CHANGELOG link nothing the tarball
// lacks, install it into a temporary app (scripts/check-tarball-app.mjs), and run size-limit on
// the built entries. Any failure exits non-zero.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, normalize } from 'node:path'

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts })
const bin = (name) => join('node_modules', '.bin', name)

/**
 * Relative links and images of a Markdown file that do not resolve inside `root` (the unpacked
 * tarball): on npmjs.com they would be broken. Absolute URLs and in-page anchors are fine.
 */
export function brokenRelativeLinks(root, file) {
  const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '')
  const targets = [
    ...[...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
    ...[...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]),
    ...[...text.matchAll(/<(?:img|a)\s[^>]*(?:src|href)="([^"]+)"/g)].map((m) => m[1]),
  ]
  return targets.filter((target) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#') || target.startsWith('//')) return false
    const path = normalize(join(dirname(file), decodeURIComponent(target.split('#')[0])))
    return path.startsWith('..') || !existsSync(join(root, path))
  })
}

run('npm', ['run', 'build', '--silent'])
const dir = mkdtempSync(join(tmpdir(), 'ris-pack-'))
try {
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { encoding: 'utf8' })
  const tarball = join(dir, out.trim().split('\n').pop())
  run(bin('publint'), ['--strict', tarball])
  run(bin('attw'), [tarball])

  const unpacked = join(dir, 'unpacked')
  mkdirSync(unpacked)
  run('tar', ['-xzf', tarball, '-C', unpacked])
  const broken = ['README.md', 'CHANGELOG.md'].flatMap((file) => brokenRelativeLinks(join(unpacked, 'package'), file).map((link) => `${file}: ${link}`))
  if (broken.length > 0) {
    console.error(`Links in the packed docs that are not in the tarball (use absolute URLs or ship the files):\n  ${broken.join('\n  ')}`)
    process.exit(1)
  }
  console.log('packed README.md and CHANGELOG.md: every relative link resolves inside the tarball')

  run(process.execPath, [join('scripts', 'check-tarball-app.mjs'), tarball])
  run(bin('size-limit'), [])
} finally {
  rmSync(dir, { recursive: true, force: true })
}
