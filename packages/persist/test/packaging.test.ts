// Packaging (issue 14): the published tarballs install and work on a clean machine
// without a compiler, and still build from source where no prebuilt binary fits.
//
// What it does, with real processes and real files in os.tmpdir() (outside the
// workspace): scripts/prebuild.mjs + scripts/pack-all.mjs pack every public package;
// `npm install` of the tarballs runs with HOME empty (no ~/.npmrc) and a PATH holding
// only node, npm and sh — no g++, gcc, cc, c++, cmake, make, ninja, clang; then a
// heap-only program, the root README's persist example, the pbase README's example,
// the CLI, require() from CommonJS and tsc on a TypeScript consumer run against the
// installed packages. Third-party dependencies come from
// the npm registry (or npm's cache); our packages only from the local tarballs.
// About 40 s of CPU, most of it npm install, tsc and one source build of @persist/heap
// (measured: 40 s user CPU, 2-4 min wall at load average 20-40 on 2 cores; the timeouts
// are ceilings for such loaded machines).
import { spawn } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadNative, PersistError } from '@persist/pager'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const repo = resolve(fileURLToPath(new URL('../../../', import.meta.url)))
const work = mkdtempSync(join(tmpdir(), 'persist-packaging-'))
const tarballs = join(work, 'tarballs')
const app = join(work, 'app')
const home = join(work, 'home')
const bareBin = join(work, 'bin')

interface Run {
  code: number | null
  out: string
}
/** Runs a real process; resolves with its exit code and interleaved stdout+stderr. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    const p = spawn(cmd, args, {
      cwd: opts.cwd ?? repo,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    p.on('error', fail)
    p.on('close', (code) => done({ code, out }))
  })
}

/**
 * The environment of a "clean machine": PATH = a directory with node, npm and sh only;
 * HOME empty (no ~/.npmrc, so no nodedir); npm's cache kept (speed) and registry /
 * proxy settings passed through. `fullPath` gives the normal PATH (compilers found).
 */
function cleanEnv(fullPath = false): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: fullPath ? (process.env.PATH ?? '') : bareBin,
    HOME: home,
    npm_config_userconfig: join(home, '.npmrc'),
    npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
  }
  for (const [k, v] of Object.entries(process.env))
    if (/^(https?_proxy|no_proxy|npm_config_registry)$/i.test(k) && v !== undefined) env[k] = v
  return env
}

/** The first ```ts block of a README, as a runnable .mjs program. */
function readmeExample(readme: string): string {
  const m = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(repo, readme), 'utf8'))
  if (!m) throw new Error(`${readme} has no ts example`)
  return m[1]
}

interface PackReport {
  tag: string
  packages: {
    name: string
    version: string
    tarball: string
    files: number
    packedBytes: number
    unpackedBytes: number
    native: boolean
    prebuilds: string[]
    paths: string[]
    problems: string[]
  }[]
}
let report: PackReport

beforeAll(async () => {
  mkdirSync(home)
  writeFileSync(join(home, '.npmrc'), '')
  mkdirSync(bareBin)
  symlinkSync(process.execPath, join(bareBin, 'node'))
  symlinkSync('/bin/sh', join(bareBin, 'sh')) // npm runs scripts with sh
  const npmCli = join(
    resolve(process.execPath, '..', '..'),
    'lib',
    'node_modules',
    'npm',
    'bin',
    'npm-cli.js',
  )
  symlinkSync(existsSync(npmCli) ? npmCli : '/usr/lib/node_modules/npm/bin/npm-cli.js', join(bareBin, 'npm'))

  const pre = await run(process.execPath, ['scripts/prebuild.mjs'])
  expect(pre.code, pre.out).toBe(0)
  const pack = await run(process.execPath, ['scripts/pack-all.mjs', '--out', tarballs])
  expect(pack.code, pack.out).toBe(0)
  report = JSON.parse(readFileSync(join(tarballs, 'pack-report.json'), 'utf8'))
  console.log(pack.out) // the size table, in the test log
}, 240_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

describe('14 packaging', () => {
  it('14.1 every public package packs, passes publint and the content checks', () => {
    const names = report.packages.map((p) => p.name).sort()
    expect(names).toEqual([
      '@persist/cli',
      '@persist/heap',
      '@persist/objects',
      '@persist/pager',
      '@persist/pbase',
      '@persist/persist',
    ])
    for (const p of report.packages) {
      expect(p.problems, p.name).toEqual([])
      expect(existsSync(join(tarballs, `${p.name.slice(1).replace('/', '-')}-${p.version}.tgz`))).toBe(true)
      // sizes are reported, and small: a stray build tree or store would blow this up
      expect(p.packedBytes).toBeGreaterThan(1000)
      expect(p.packedBytes, `${p.name} tarball size`).toBeLessThan(1024 * 1024)
    }
  })

  it('14.2 tarballs hold no test, bench, build or tooling files; native ones carry a prebuilt binary and their sources', () => {
    for (const p of report.packages) {
      for (const path of p.paths) {
        expect(path, p.name).not.toMatch(
          /(^|\/)(test|tests|bench|fixtures|build|build-asan|build-bench|node_modules)\//,
        )
        expect(path, p.name).not.toMatch(/\.(tsbuildinfo|persist|log)$|(^|\/)\.[^/]+$/)
        expect(path, p.name).not.toMatch(/\.test\.[jt]s$/)
      }
      expect(p.paths).toContain('package.json')
      expect(p.paths).toContain('dist/index.js')
      expect(p.paths).toContain('dist/index.d.ts')
    }
    const tag = report.tag
    for (const name of ['pager', 'heap']) {
      const p = report.packages.find((x) => x.name === `@persist/${name}`)
      expect(p?.native).toBe(true)
      expect(p?.prebuilds).toEqual([`prebuilds/${tag}/${name}.node`])
      expect(p?.paths).toEqual(
        expect.arrayContaining(['scripts/install.mjs', 'CMakeLists.txt', `native/${name}.cc`]),
      )
    }
    // heap's source build compiles the pager core from the installed @persist/pager
    const pager = report.packages.find((x) => x.name === '@persist/pager')
    expect(pager?.paths).toEqual(
      expect.arrayContaining([
        'native/pager.cc',
        'native/pager.h',
        'native/pager_binding.h',
        'include/persist_format.h',
      ]),
    )
  })

  it('14.3 npm install of the tarballs with no compiler on PATH succeeds without compiling', async () => {
    // the PATH really has no build tools
    const probe = await run(
      'sh',
      ['-c', 'for t in g++ gcc cc c++ clang cmake make ninja; do command -v $t; done; exit 0'],
      { env: cleanEnv() },
    )
    expect(probe.out.trim()).toBe('')

    mkdirSync(app)
    const deps: Record<string, string> = {}
    for (const p of report.packages)
      deps[p.name] = `file:${join(tarballs, `${p.name.slice(1).replace('/', '-')}-${p.version}.tgz`)}`
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        { name: 'persist-consumer', private: true, type: 'module', dependencies: deps },
        null,
        2,
      ),
    )
    const r = await run('npm', ['install', '--prefer-offline', '--foreground-scripts', '--no-package-lock'], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(r.code, r.out).toBe(0)
    // the install step ran (our two native packages) and found the prebuilt binaries
    expect(r.out).toMatch(/@persist\/pager@[^\n]* install/)
    expect(r.out).toMatch(/@persist\/heap@[^\n]* install/)
    expect(r.out).not.toMatch(/building from source|could not build/)
    for (const name of ['pager', 'heap']) {
      const dir = join(app, 'node_modules', '@persist', name)
      expect(existsSync(join(dir, 'prebuilds', report.tag, `${name}.node`))).toBe(true)
      expect(existsSync(join(dir, 'build')), `${name}: nothing compiled`).toBe(false)
    }
    for (const d of readdirSync(join(app, 'node_modules', '@persist')))
      expect(existsSync(join(app, 'node_modules', '@persist', d, 'build')), d).toBe(false)
  }, 180_000)

  it('14.4 a heap-only program (pick-a-layer): openHeap, alloc, write, reopen, read', async () => {
    writeFileSync(
      join(app, 'heap-only.mjs'),
      `import { openHeap, ALIGN } from '@persist/heap'
const file = process.argv[2]
let heap = openHeap(file)
const text = 'hello from the heap'
const off = heap.transaction(() => {
  const o = heap.alloc(64)
  heap.pager.willWrite(o, 64)
  heap.mem.setU32(o, text.length)
  heap.mem.writeLatin1(o + 4, text)
  heap.setRoot(1, o)
  return o
})
heap.close()
heap = openHeap(file)
const back = heap.root(1)
console.log(JSON.stringify({ same: back === off, text: heap.mem.latin1(back + 4, heap.mem.u32(back)), align: ALIGN, problems: heap.check() }))
heap.close()
`,
    )
    const r = await run('node', ['heap-only.mjs', join(work, 'heap.persist')], { cwd: app, env: cleanEnv() })
    expect(r.code, r.out).toBe(0)
    expect(JSON.parse(r.out)).toEqual({ same: true, text: 'hello from the heap', align: 16, problems: [] })
  })

  it("14.5 the README's persist example runs as written, twice, and the CLI reads its store", async () => {
    writeFileSync(join(app, 'readme.mjs'), readmeExample('README.md'))
    for (let i = 0; i < 2; i++) {
      const r = await run('node', ['readme.mjs'], { cwd: app, env: cleanEnv() })
      expect(r.code, r.out).toBe(0)
      expect(r.out.trim()).toBe('27')
    }
    writeFileSync(
      join(app, 'visits.mjs'),
      `import { open } from '@persist/persist'
const s = open('site.persist')
console.log(JSON.stringify({ visits: s.root.visits, tags: [...s.root.people.joe.tags] }))
s.close()
`,
    )
    const v = await run('node', ['visits.mjs'], { cwd: app, env: cleanEnv() })
    expect(v.code, v.out).toBe(0)
    expect(JSON.parse(v.out)).toEqual({ visits: 2, tags: ['admin'] })
    // the bin of @persist/cli is linked and works against the installed packages
    const cli = await run(join(app, 'node_modules', '.bin', 'persist'), ['check', 'site.persist'], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(cli.code, cli.out).toBe(0)
  })

  it("14.6 the pbase README's example: a Person stored, read back as a Person in a new process", async () => {
    writeFileSync(
      join(app, 'pbase.mjs'),
      `${readmeExample('packages/pbase/README.md')}
console.log(JSON.stringify({ isPerson: root.Joe instanceof Person, age: root.Joe.age, says: root.Joe.printAge() }))
`,
    )
    const first = await run('node', ['pbase.mjs'], { cwd: app, env: cleanEnv() })
    expect(first.code, first.out).toBe(0)
    expect(JSON.parse(first.out)).toEqual({ isPerson: true, age: 28, says: 'Joe is 28 years old' })
    const second = await run('node', ['pbase.mjs'], { cwd: app, env: cleanEnv() })
    expect(second.code, second.out).toBe(0)
    expect(JSON.parse(second.out)).toEqual({ isPerson: true, age: 29, says: 'Joe is 29 years old' })
  })

  it('14.7 CommonJS consumers can require() the ESM packages (Node >= 20.19)', async () => {
    const r = await run(
      'node',
      [
        '-e',
        "const p = require('@persist/persist'); const h = require('@persist/heap'); console.log(typeof p.open, h.ALIGN)",
      ],
      { cwd: app, env: cleanEnv() },
    )
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('function 16')
  })

  it('14.8 TypeScript consumers get the shipped .d.ts (NodeNext resolution, strict, lib check on)', async () => {
    writeFileSync(
      join(app, 'consumer.ts'),
      `import * as cli from '@persist/cli'
import * as objects from '@persist/objects'
import { openPager, PersistError } from '@persist/pager'
import { type Heap, openHeap } from '@persist/heap'
import { open, type Store } from '@persist/persist'
import { PBase, register } from '@persist/pbase'
const heap: Heap = openHeap('x.persist')
const off: number = heap.alloc(16)
const store: Store = open('y.persist')
class Person extends PBase { name = '' }
register(Person)
const code: string = new PersistError('PERSIST_CORRUPT', 'x').code
// @ts-expect-error real types, not any: alloc() returns a number
const wrong: string = heap.alloc(16)
console.log(off, store, code, wrong, openPager, objects, cli)
`,
    )
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc')
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext']
    args.push('--target', 'es2022', '--typeRoots', join(repo, 'node_modules', '@types'), '--types', 'node')
    const r = await run(process.execPath, [tsc, ...args, 'consumer.ts'], { cwd: app, env: cleanEnv() })
    expect(r.code, r.out).toBe(0)
  }, 180_000)

  it('14.9 no fitting prebuilt and no compiler: the install step fails with what to install; the loader says what to run', async () => {
    const heapDir = join(app, 'node_modules', '@persist', 'heap')
    renameSync(join(heapDir, 'prebuilds'), join(work, 'heap-prebuilds'))
    const r = await run('npm', ['rebuild', '@persist/heap', '--foreground-scripts'], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(r.code).not.toBe(0)
    expect(r.out).toContain(`no prebuilt binary for ${report.tag}`)
    expect(r.out).toContain('could not build the native addon from source')
    expect(r.out).toMatch(/g\+\+ >= 10.*cmake >= 3\.15/)
    expect(existsSync(join(heapDir, 'build', 'Release', 'heap.node'))).toBe(false)

    const load = await run('node', ['heap-only.mjs', join(work, 'heap2.persist')], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(load.code).not.toBe(0)
    expect(load.out).toContain('PERSIST_NATIVE')
    expect(load.out).toContain('npm rebuild @persist/heap')

    // a prebuilt binary that does not load here (e.g. built against a newer glibc) is
    // detected by the install step, which then tries a source build
    const pagerBin = join(app, 'node_modules', '@persist', 'pager', 'prebuilds', report.tag, 'pager.node')
    copyFileSync(pagerBin, join(work, 'pager.node.good'))
    writeFileSync(pagerBin, 'not an ELF file')
    const p = await run('npm', ['rebuild', '@persist/pager', '--foreground-scripts'], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(p.code).not.toBe(0)
    expect(p.out).toContain('does not load here')
    expect(p.out).toContain('could not build the native addon from source')
    copyFileSync(join(work, 'pager.node.good'), pagerBin)
  }, 120_000)

  it('14.10 no fitting prebuilt but a compiler: the install step builds @persist/heap from source (pager sources from node_modules)', async () => {
    const heapDir = join(app, 'node_modules', '@persist', 'heap')
    expect(existsSync(join(heapDir, 'prebuilds'))).toBe(false) // moved away by 14.9
    const r = await run('npm', ['rebuild', '@persist/heap', '--foreground-scripts'], {
      cwd: app,
      env: cleanEnv(true),
    })
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('built from source')
    expect(existsSync(join(heapDir, 'build', 'Release', 'heap.node'))).toBe(true)
    // runs (on the bare PATH again) from the source-built binary: prebuilds/ is gone
    const ok = await run('node', ['heap-only.mjs', join(work, 'heap3.persist')], {
      cwd: app,
      env: cleanEnv(),
    })
    expect(ok.code, ok.out).toBe(0)
    expect(JSON.parse(ok.out).text).toBe('hello from the heap')
  }, 300_000)

  it('14.11 loadNative looks at build/Release first, then prebuilds/<platform>-<arch>-<libc>', () => {
    const good = join(repo, 'packages', 'pager', 'build', 'Release', 'pager.node')
    const root = join(work, 'fake', 'pager')
    const pre = join(root, 'prebuilds', report.tag)
    mkdirSync(pre, { recursive: true })
    copyFileSync(good, join(pre, 'pager.node'))
    // the binding version of the workspace build (already loaded by @persist/pager)
    const abi = (createRequire(import.meta.url)(good) as { abiVersion: number }).abiVersion
    expect(loadNative<{ abiVersion: number }>(root, 'pager', abi).abiVersion).toBe(abi)
    // a stale binding version is refused
    expect(() => loadNative(root, 'pager', 999)).toThrow(`stale (binding version ${abi}, expected 999)`)
    expect(() => loadNative(root, 'pager', 999)).toThrow('PERSIST_FORCE_BUILD=1 npm rebuild @persist/pager')
    // a local build wins: a broken build/Release is what gets loaded (and reported)
    mkdirSync(join(root, 'build', 'Release'), { recursive: true })
    writeFileSync(join(root, 'build', 'Release', 'pager.node'), 'not an ELF file')
    expect(() => loadNative(root, 'pager', abi)).toThrow(/build\/Release\/pager\.node failed to load/)
    // neither: PERSIST_NATIVE naming both places and, in a source checkout, pnpm build
    const empty = join(work, 'fake', 'empty')
    mkdirSync(empty, { recursive: true })
    let err: unknown
    try {
      loadNative(empty, 'pager', abi)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PersistError)
    expect((err as PersistError).code).toBe('PERSIST_NATIVE')
    expect((err as Error).message).toContain(`prebuilds/${report.tag}/pager.node`)
    expect((err as Error).message).toContain('pnpm build')
  })
})
