#!/usr/bin/env node
// Copies each native package's freshly built addon, build/Release/<name>.node, to
// prebuilds/<platform>-<arch>[-glibc|-musl]/<name>.node inside the package, where
// loadNative() (@persist/pager src/native.ts) and scripts/install.mjs look for it.
// N-API 8: one binary serves every Node >= 20, so one file per platform.
//
//   node scripts/prebuild.mjs [--no-strip]
//
// Run after `pnpm build` and before packing (the root script `release:pack` does both).
// Only this platform's files are replaced: binaries for other platforms, copied in
// from other build machines (see docs/packaging.md), stay and are packed too.
// Each copy is stripped of debug symbols (`strip --strip-unneeded`, when `strip` is
// installed; about 12% smaller), then loaded in a child process to prove it works,
// and its glibc / libstdc++ symbol-version needs are printed (from `objdump -T`).
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = dirname(dirname(fileURLToPath(import.meta.url)))
const strip = !process.argv.includes('--no-strip')

/** Same rule as loadNative(): the libc this Node process runs on. */
function libc() {
  let maps = ''
  try {
    maps = readFileSync('/proc/self/maps', 'latin1')
  } catch {}
  if (/\/(ld-musl-|libc\.musl-)/.test(maps)) return 'musl'
  if (/\/libc(-[0-9.]+)?\.so/.test(maps)) return 'glibc'
  return process.report?.getReport().header?.glibcVersionRuntime ? 'glibc' : 'musl'
}
export const tag = `${process.platform}-${process.arch}${process.platform === 'linux' ? `-${libc()}` : ''}`

/** Native packages: those declaring "binary": {"napi_versions": [...]} (cmake-js). */
export function nativePackages() {
  const out = []
  for (const d of readdirSync(join(repo, 'packages')).sort()) {
    const file = join(repo, 'packages', d, 'package.json')
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8'))
    if (pkg.binary?.napi_versions)
      out.push({ dir: join(repo, 'packages', d), pkg, name: pkg.name.split('/').pop() })
  }
  return out
}

/** Highest GLIBC_x.y and GLIBCXX_x.y.z versions the binary's dynamic symbols need. */
function symbolNeeds(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' })
  if (r.status !== 0) return 'objdump not available'
  const max = (prefix) => {
    const vs = [...r.stdout.matchAll(new RegExp(`\\(${prefix}_([0-9.]+)\\)`, 'g'))].map((m) => m[1])
    vs.sort((a, b) => {
      const x = a.split('.').map(Number)
      const y = b.split('.').map(Number)
      for (let i = 0; i < Math.max(x.length, y.length); i++)
        if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
      return 0
    })
    return vs.at(-1)
  }
  const glibc = max('GLIBC')
  const cxx = max('GLIBCXX')
  return [glibc && `glibc >= ${glibc}`, cxx && `libstdc++ GLIBCXX_${cxx}`].filter(Boolean).join(', ')
}

function main() {
  const rows = []
  for (const { dir, pkg, name } of nativePackages()) {
    const built = join(dir, 'build', 'Release', `${name}.node`)
    if (!existsSync(built)) {
      console.error(`prebuild: ${relative(repo, built)} is missing: run \`pnpm build\` first`)
      process.exit(1)
    }
    const outDir = join(dir, 'prebuilds', tag)
    mkdirSync(outDir, { recursive: true })
    const out = join(outDir, `${name}.node`)
    // Prepared under a temporary name, moved into place once it loads: a concurrent
    // pack never sees a half-written or missing binary.
    const tmp = join(outDir, `.${name}.${process.pid}.tmp.node`) // .node: require() picks the addon loader by extension
    copyFileSync(built, tmp)
    let stripped = false
    if (strip && process.platform === 'linux') {
      const r = spawnSync('strip', ['--strip-unneeded', tmp], { encoding: 'utf8' })
      stripped = r.status === 0
      if (r.error === undefined && r.status !== 0) {
        console.error(`prebuild: strip failed on ${tmp}: ${r.stderr}`)
        process.exit(1)
      }
    }
    // Prove the copy loads in a fresh Node (a process of its own: no clash with others).
    const probe = spawnSync(process.execPath, ['-p', `require(${JSON.stringify(tmp)}).abiVersion`], {
      encoding: 'utf8',
    })
    if (probe.status !== 0) {
      console.error(`prebuild: ${built} (copied to ${tmp}) does not load:\n${probe.stderr}`)
      rmSync(tmp, { force: true })
      process.exit(1)
    }
    renameSync(tmp, out)
    rows.push({
      package: pkg.name,
      file: relative(repo, out),
      bytes: statSync(out).size,
      built: statSync(built).size,
      stripped,
      abi: Number(probe.stdout.trim()),
      needs: process.platform === 'linux' ? symbolNeeds(out) : '',
    })
  }
  console.log(`prebuilt binaries for ${tag} (N-API 8, Node >= 20):`)
  for (const r of rows) {
    const kib = (n) => `${(n / 1024).toFixed(1)} KiB`
    console.log(
      `  ${r.file}  ${kib(r.bytes)}${r.stripped ? ` (stripped from ${kib(r.built)})` : ''}  abi ${r.abi}  needs ${r.needs}`,
    )
  }
  return rows
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main()
