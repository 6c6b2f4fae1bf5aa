import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, sep } from 'node:path'
import { PersistError } from './errors.js'

const require = createRequire(import.meta.url)

let libc: 'glibc' | 'musl' | undefined

/**
 * The C library of this process on Linux. /proc/self/maps names the libc actually
 * loaded (about 0.6 ms); process.report.getReport() says the same but costs about
 * 60 ms, so it is only the fallback when /proc is not mounted.
 */
function linuxLibc(): 'glibc' | 'musl' {
  if (libc !== undefined) return libc
  let maps = ''
  try {
    maps = readFileSync('/proc/self/maps', 'latin1')
  } catch {
    // no /proc: ask the diagnostic report below
  }
  if (/\/(ld-musl-|libc\.musl-)/.test(maps)) libc = 'musl'
  else if (/\/libc(-[0-9.]+)?\.so/.test(maps)) libc = 'glibc'
  else {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    libc = report?.header?.glibcVersionRuntime ? 'glibc' : 'musl'
  }
  return libc
}

/**
 * The directory under `prebuilds/` holding binaries for this process:
 * `<platform>-<arch>`, plus `-glibc` or `-musl` on Linux (e.g. `linux-x64-glibc`).
 */
export function prebuildTag(): string {
  const base = `${process.platform}-${process.arch}`
  return process.platform === 'linux' ? `${base}-${linuxLibc()}` : base
}

/**
 * What a user should run to get a working addon: in an installed package (a path
 * inside node_modules) a source build through npm; in a source checkout, pnpm build.
 */
function howToBuild(packageRoot: string, name: string): string {
  if (packageRoot.split(sep).includes('node_modules'))
    return `build it from source with \`npm rebuild @persist/${name}\` (needs g++ >= 10, cmake >= 3.15 and make on PATH)`
  return `run \`pnpm build\` in the repository (or \`npx cmake-js compile\` in ${packageRoot})`
}

/**
 * Loads the addon `<name>.node` of the package at `packageRoot`, looking in order at
 *  1. `build/Release/<name>.node` — a local source build (pnpm build, or the install
 *     step's cmake-js fallback) always wins;
 *  2. `prebuilds/<prebuildTag()>/<name>.node` — the binary shipped in the tarball
 *     (N-API 8: one binary serves every Node >= 20).
 * A missing or broken addon becomes a PersistError PERSIST_NATIVE that says what to
 * run, instead of a raw dlopen message. `expectAbi` guards against a stale build
 * from older sources.
 */
export function loadNative<T extends { abiVersion?: number }>(
  packageRoot: string,
  name: string,
  expectAbi: number,
): T {
  const built = join(packageRoot, 'build', 'Release', `${name}.node`)
  const tag = prebuildTag()
  const prebuilt = join(packageRoot, 'prebuilds', tag, `${name}.node`)
  const file = existsSync(built) ? built : existsSync(prebuilt) ? prebuilt : undefined
  if (file === undefined) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon of @persist/${name} is not built and has no prebuilt binary for ${tag} (looked for ${built} and ${prebuilt}): ${howToBuild(packageRoot, name)}`,
    )
  }
  const fix =
    file === prebuilt ? howToBuild(packageRoot, name) : `rebuild it: ${howToBuild(packageRoot, name)}`
  let mod: T
  try {
    mod = require(file) as T
  } catch (e) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} failed to load (${(e as Error).message}); ${fix}`,
      { cause: e },
    )
  }
  if (mod.abiVersion !== expectAbi) {
    // A stale prebuilt binary is a packaging bug; the install step would keep it (it
    // loads), so the source build has to be forced.
    const stale =
      file === prebuilt
        ? `the package's prebuilt binary does not match its JavaScript (please report it); build from source with \`PERSIST_FORCE_BUILD=1 npm rebuild @persist/${name}\``
        : fix
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} is stale (binding version ${mod.abiVersion}, expected ${expectAbi}); ${stale}`,
    )
  }
  return mod
}

/**
 * The native handle of a store as exposed by the pager's addon — and, with the same
 * method names, by every addon that compiles the pager core in (e.g. @persist/heap's
 * handle). Numbers are JS doubles; page numbers and offsets are below 2^53.
 * Errors thrown by these methods are PersistError once `setErrorClass` was called.
 */
export interface NativePager {
  begin(): number
  commit(): void
  abort(): void
  savepoint(): number
  rollbackTo(token: number): void
  willWrite(offset: number, length: number): void
  allocPages(n: number): number
  freePages(page: number): void
  extendRun(page: number, pages: number): boolean
  runLength(page: number): number
  /** First page of the run containing `page`, or -1 if the page is free. */
  runStart(page: number): number
  slot(i: number): number
  setSlot(i: number, v: number): void
  stats(): NativeStats
  check(): string[]
  close(): void
  windows(): ArrayBuffer[]
  mapGeneration(): number
  mappedBytes(): number
  txid(): number
  ownCommitTxid(): number
  inTxn(): boolean
  closed(): boolean
  readonly(): boolean
  path(): string
  waitForCommit(seenTxid: number, timeoutMs: number): boolean
}

export interface NativeStats {
  pageCount: number
  freePages: number
  fileBytes: number
  mappedBytes: number
  txid: number
  journalChunks: number
  journalEntries: number
}
