// The package's install step ("install": "node scripts/install.mjs"), the same file in
// @persist/pager and @persist/heap (scripts/pack-all.mjs checks they are identical).
//  1. In a source checkout (this package is not inside node_modules, e.g. our pnpm
//     workspace, where pnpm runs install scripts before sources are built): do
//     nothing — `pnpm build` compiles the addon. PERSIST_FORCE_BUILD=1 builds anyway.
//  2. A prebuilt binary for this platform exists and loads: do nothing (no compiler).
//  3. Otherwise build from source with cmake-js; if that fails, say what is needed
//     and exit non-zero.
// The prebuilds/<tag> naming matches loadNative() in @persist/pager (src/native.ts).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const name = pkg.name.split('/').pop()
const say = (msg) => console.error(`${pkg.name}: ${msg}`)
const force = process.env.PERSIST_FORCE_BUILD === '1'

if (!root.split(sep).includes('node_modules') && !force) {
  say('source checkout: nothing to install (`pnpm build` compiles the addon)')
  process.exit(0)
}

function libc() {
  let maps = ''
  try {
    maps = readFileSync('/proc/self/maps', 'latin1')
  } catch {}
  if (/\/(ld-musl-|libc\.musl-)/.test(maps)) return 'musl'
  if (/\/libc(-[0-9.]+)?\.so/.test(maps)) return 'glibc'
  return process.report?.getReport().header?.glibcVersionRuntime ? 'glibc' : 'musl'
}
const tag = `${process.platform}-${process.arch}${process.platform === 'linux' ? `-${libc()}` : ''}`
const prebuilt = join(root, 'prebuilds', tag, `${name}.node`)
const require = createRequire(join(root, 'package.json'))

if (existsSync(prebuilt) && !force) {
  try {
    require(prebuilt) // dlopen: catches e.g. a glibc older than the one it was built against
    process.exit(0)
  } catch (e) {
    say(
      `the prebuilt binary for ${tag} does not load here (${e.message.split('\n')[0]}); building from source`,
    )
  }
} else if (!force) {
  say(`no prebuilt binary for ${tag}; building from source with cmake-js`)
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js')
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release', '-l', 'error'], {
  cwd: root,
  stdio: 'inherit',
})
if (r.status !== 0) {
  const shipped = existsSync(join(root, 'prebuilds'))
    ? readdirSync(join(root, 'prebuilds')).join(', ')
    : 'none'
  say(
    [
      `could not build the native addon from source for ${tag}.`,
      `  Prebuilt binaries in this package: ${shipped}.`,
      '  A source build needs g++ >= 10 (or clang >= 11), cmake >= 3.15 and make on PATH,',
      '  e.g. `apt-get install g++ cmake make` (Debian/Ubuntu), `apk add g++ cmake make` (Alpine),',
      `  \`dnf install gcc-c++ cmake make\` (Fedora/RHEL); then run \`npm rebuild ${pkg.name}\`.`,
      '  Or install on a supported platform (linux-x64 with glibc >= 2.34) to use the prebuilt binary.',
    ].join('\n'),
  )
  process.exit(1)
}
say(`built from source: ${join(root, 'build', 'Release', `${name}.node`)}`)
