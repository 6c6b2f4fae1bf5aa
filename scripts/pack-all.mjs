#!/usr/bin/env node
// Packs every public workspace package with `pnpm pack` (which turns workspace:^ into
// real version ranges) and checks each tarball before anyone publishes it:
//   - publint (strict: warnings are errors) on the tarball itself;
//   - no stray files: no tests, benches, build trees, fixtures, stores, logs,
//     tsbuildinfo, dotfiles, or scripts other than the native install step;
//   - everything package.json points at (main, types, exports, bin) is in the tarball,
//     every dist/*.js has its .d.ts, every source map's sources are shipped;
//   - no `workspace:` range left; internal dependencies pinned to ^<current version>;
//   - native packages (those with "binary".napi_versions) carry
//     prebuilds/<this platform>/<name>.node, scripts/install.mjs (identical in all of
//     them) run by "install", CMakeLists.txt and their C++ sources, and depend on
//     cmake-js + node-addon-api for the source-build fallback.
// Prints a table (files, packed and unpacked size) and writes <out>/pack-report.json.
//
//   node scripts/pack-all.mjs [--out DIR]     (default DIR: dist-packages/)
//
// Run it after `pnpm build` and `node scripts/prebuild.mjs`: `pnpm release:pack` does
// all three. Exit code 1 when any check fails (each problem is printed).
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { tag } from './prebuild.mjs'

const repo = dirname(dirname(fileURLToPath(import.meta.url)))
const execFileAsync = promisify(execFile)
const outArg = process.argv.indexOf('--out')
const outDir = resolve(outArg > 0 ? process.argv[outArg + 1] : join(repo, 'dist-packages'))

/** Public packages of the workspace (packages/* and apps/*, not "private"). */
function publicPackages() {
  const out = []
  for (const group of ['packages', 'apps']) {
    const base = join(repo, group)
    if (!existsSync(base)) continue
    for (const d of readdirSync(base).sort()) {
      const file = join(base, d, 'package.json')
      if (!existsSync(file)) continue
      const pkg = JSON.parse(readFileSync(file, 'utf8'))
      if (pkg.private !== true) out.push({ dir: join(base, d), pkg })
    }
  }
  return out
}

/** Entries of a .tgz: [{ path (without the leading package/), size, mode, data }]. */
export function readTarball(file) {
  const buf = gunzipSync(readFileSync(file))
  const entries = []
  let paxPath
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512)
    if (h.every((b) => b === 0)) break
    const str = (a, n) =>
      h
        .subarray(a, a + n)
        .toString('utf8')
        .replace(/\0.*$/s, '')
    const size = Number.parseInt(str(124, 12).trim() || '0', 8)
    const type = String.fromCharCode(h[156] || 48)
    const data = buf.subarray(off + 512, off + 512 + size)
    off += 512 + Math.ceil(size / 512) * 512
    if (type === 'x') {
      paxPath = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1]
      continue
    }
    if (type !== '0' && type !== '\0') continue // directories, links: pnpm writes none
    const prefix = str(345, 155)
    let path = paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100))
    paxPath = undefined
    path = path.replace(/^package\//, '')
    entries.push({ path, size, mode: Number.parseInt(str(100, 8).trim() || '0', 8), data })
  }
  return entries
}

/** Paths a consumer must never receive. */
const STRAY = [
  [
    /(^|\/)(test|tests|__tests__|fixtures|bench|benchmarks|coverage|node_modules|\.turbo)\//,
    'test/bench/tooling dir',
  ],
  [/(^|\/)build(-[^/]*)?\//, 'build tree (build/, build-asan/…): the loader must find prebuilds/ only'],
  [/\.tsbuildinfo$/, 'tsbuildinfo'],
  [/\.(persist|log)$/, 'store or log file'],
  [/(^|\/)\.[^/]+$/, 'dotfile'],
  [/^dist-packages\//, 'packed tarballs'],
  [/^scripts\/(?!install\.mjs$)/, 'script other than scripts/install.mjs'],
  [/\.(test|spec)\.[cm]?[jt]s$/, 'test file'],
]

/** Every file path package.json points at, relative, without ./ */
function entryPoints(pkg) {
  const out = []
  const add = (v) => {
    if (typeof v === 'string') out.push(posix.normalize(v).replace(/^\.\//, ''))
    else if (v && typeof v === 'object') for (const x of Object.values(v)) add(x)
  }
  add(pkg.main)
  add(pkg.types)
  add(pkg.exports)
  add(pkg.bin)
  return out
}

async function checkPackage({ pkg }, tarball, versions, installScripts) {
  const problems = []
  const warnings = []
  const entries = readTarball(tarball)
  const files = new Map(entries.map((e) => [e.path, e]))

  for (const e of entries) {
    for (const [re, why] of STRAY) if (re.test(e.path)) problems.push(`stray file ${e.path} (${why})`)
  }
  const packed = JSON.parse(files.get('package.json').data.toString('utf8'))

  for (const p of entryPoints(packed))
    if (!files.has(p)) problems.push(`package.json points at ${p}, not in the tarball`)
  for (const bin of Object.values(typeof packed.bin === 'string' ? { x: packed.bin } : (packed.bin ?? {}))) {
    const e = files.get(posix.normalize(bin).replace(/^\.\//, ''))
    if (e && (e.mode & 0o111) === 0) problems.push(`bin ${bin} is not executable`)
  }
  const missingSources = new Set()
  for (const p of files.keys()) {
    if (/^dist\/.*\.js$/.test(p) && !files.has(p.replace(/\.js$/, '.d.ts')))
      problems.push(`${p} has no .d.ts`)
    if (p.endsWith('.map')) {
      const map = JSON.parse(files.get(p).data.toString('utf8'))
      for (const s of map.sources ?? []) {
        const src = posix.normalize(posix.join(posix.dirname(p), map.sourceRoot ?? '', s))
        if (!files.has(src)) missingSources.add(src)
      }
    }
  }
  if (missingSources.size > 0)
    problems.push(
      `source maps point at ${missingSources.size} files not in the tarball (${[...missingSources].slice(0, 3).join(', ')}…): add "src" to "files"`,
    )
  if (!packed.types && !packed.exports?.['.']?.types) problems.push('no "types"')
  if (packed.type !== 'module') problems.push('"type" is not "module"')
  if (!files.has('README.md')) warnings.push('no README.md (the registry page will be empty)')
  if (!entries.some((e) => /^LICEN[CS]E/i.test(e.path)))
    warnings.push(`no LICENSE file (package.json says "${packed.license}")`)

  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dep, range] of Object.entries(packed[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${dep} is still ${range}`)
      if (versions.has(dep) && range !== `^${versions.get(dep)}`)
        problems.push(`${field}.${dep} is ${range}, expected ^${versions.get(dep)} (the workspace version)`)
    }
  }

  const native = pkg.binary?.napi_versions !== undefined
  if (native) {
    const name = pkg.name.split('/').pop()
    const bin = `prebuilds/${tag}/${name}.node`
    if (!files.has(bin)) problems.push(`no ${bin}: run \`node scripts/prebuild.mjs\` after \`pnpm build\``)
    if (!packed.binary?.napi_versions?.includes(8)) problems.push('"binary".napi_versions must include 8')
    if (packed.scripts?.install !== 'node scripts/install.mjs')
      problems.push(
        `"scripts".install is ${JSON.stringify(packed.scripts?.install)}, expected "node scripts/install.mjs"`,
      )
    const install = files.get('scripts/install.mjs')
    if (!install) problems.push('no scripts/install.mjs')
    else installScripts.set(pkg.name, install.data.toString('utf8'))
    if (!files.has('CMakeLists.txt')) problems.push('no CMakeLists.txt (source-build fallback)')
    if (!entries.some((e) => /^native\/[^/]+\.cc$/.test(e.path))) problems.push('no native/*.cc sources')
    for (const dep of ['cmake-js', 'node-addon-api'])
      if (!packed.dependencies?.[dep]) problems.push(`"dependencies" lacks ${dep} (source-build fallback)`)
  }

  // publint on the tarball bytes: exports/types/main/bin consistency, ESM format.
  const bytes = readFileSync(tarball)
  const lint = await publint({
    pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) },
    level: 'warning',
    strict: true,
  })
  for (const m of lint.messages)
    problems.push(`publint ${m.code}: ${formatMessage(m, lint.pkg, { color: false })}`)

  return {
    name: pkg.name,
    version: pkg.version,
    tarball: relative(repo, tarball),
    files: entries.length,
    packedBytes: bytes.length,
    unpackedBytes: entries.reduce((n, e) => n + e.size, 0),
    native,
    prebuilds: entries.filter((e) => e.path.startsWith('prebuilds/')).map((e) => e.path),
    paths: entries.map((e) => e.path).sort(),
    publint: lint.messages.length === 0 ? 'clean' : `${lint.messages.length} messages`,
    problems,
    warnings,
  }
}

/**
 * JSON.stringify(v, null, 2), except that an array fitting on its line (110 columns)
 * is written on one line: the layout `biome format` gives, so `biome check .` stays
 * clean while dist-packages/ holds a report.
 */
function toJson(v, indent = '', lead = 0) {
  if (Array.isArray(v)) {
    const flat = `[${v.map((x) => JSON.stringify(x)).join(', ')}]`
    if (v.every((x) => typeof x !== 'object' || x === null) && lead + flat.length <= 110) return flat
    if (v.length === 0) return '[]'
    const inner = `${indent}  `
    return `[\n${v.map((x) => inner + toJson(x, inner, inner.length)).join(',\n')}\n${indent}]`
  }
  if (v && typeof v === 'object') {
    const inner = `${indent}  `
    const keys = Object.entries(v).map(([k, x]) => {
      const head = `${inner}${JSON.stringify(k)}: `
      return head + toJson(x, inner, head.length)
    })
    return keys.length === 0 ? '{}' : `{\n${keys.join(',\n')}\n${indent}}`
  }
  return JSON.stringify(v)
}

async function main() {
  const pkgs = publicPackages()
  const versions = new Map(pkgs.map(({ pkg }) => [pkg.name, pkg.version]))
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })

  const results = []
  const installScripts = new Map()
  for (const p of pkgs) {
    if (!existsSync(join(p.dir, 'dist'))) {
      console.error(`pack-all: ${relative(repo, p.dir)}/dist is missing: run \`pnpm build\` first`)
      process.exit(1)
    }
  }
  // pnpm pack in parallel (each is mostly process start-up), checks in package order
  const packed = await Promise.all(
    pkgs.map(async (p) => {
      const tarball = join(outDir, `${p.pkg.name.replace(/^@/, '').replace('/', '-')}-${p.pkg.version}.tgz`)
      try {
        await execFileAsync('pnpm', ['pack', '--pack-destination', outDir], {
          cwd: p.dir,
          env: { ...process.env, npm_config_update_notifier: 'false' },
        })
      } catch (e) {
        console.error(`pack-all: pnpm pack failed in ${relative(repo, p.dir)}:\n${e.stderr ?? e.message}`)
        process.exit(1)
      }
      if (!existsSync(tarball)) {
        console.error(`pack-all: pnpm pack did not write ${tarball}`)
        process.exit(1)
      }
      return { p, tarball }
    }),
  )
  for (const { p, tarball } of packed) results.push(await checkPackage(p, tarball, versions, installScripts))
  const scripts = [...new Set(installScripts.values())]
  if (scripts.length > 1) {
    for (const r of results)
      if (r.native)
        r.problems.push('scripts/install.mjs differs between native packages: keep one copy in sync')
  }

  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`
  const rows = [
    ['package', 'version', 'files', 'packed', 'unpacked', 'prebuilds', 'publint', 'check'],
    ...results.map((r) => [
      r.name,
      r.version,
      String(r.files),
      kb(r.packedBytes),
      kb(r.unpackedBytes),
      r.native ? r.prebuilds.map((p) => p.split('/')[1]).join(' ') : '-',
      r.publint,
      r.problems.length === 0 ? 'ok' : `${r.problems.length} problems`,
    ]),
  ]
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  for (const [i, row] of rows.entries()) {
    console.log(
      row.map((c, j) => (j >= 2 && j <= 4 ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join('  '),
    )
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  const total = results.reduce((n, r) => n + r.packedBytes, 0)
  console.log(
    `\n${results.length} tarballs in ${relative(repo, outDir) || outDir}, ${kb(total)} packed in total`,
  )
  for (const r of results) {
    for (const w of r.warnings) console.log(`warning: ${r.name}: ${w}`)
    for (const p of r.problems) console.error(`error: ${r.name}: ${p}`)
  }
  writeFileSync(join(outDir, 'pack-report.json'), `${toJson({ tag, packages: results })}\n`)
  if (results.some((r) => r.problems.length > 0)) process.exit(1)
}

await main()
