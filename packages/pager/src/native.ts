import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { PersistError } from './errors.js'

const require = createRequire(import.meta.url)

/**
 * Loads a compiled addon `<packageRoot>/build/Release/<name>.node` and turns a
 * missing or broken build into a PersistError that says what to run, instead of a
 * raw dlopen message. `expectAbi` guards against a stale build from older sources.
 */
export function loadNative<T extends { abiVersion?: number }>(
  packageRoot: string,
  name: string,
  expectAbi: number,
): T {
  const file = join(packageRoot, 'build', 'Release', `${name}.node`)
  if (!existsSync(file)) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon of @persist/${name} is not built (${file} is missing): run \`pnpm build\` in the repository (or \`npx cmake-js compile\` in ${packageRoot})`,
    )
  }
  let mod: T
  try {
    mod = require(file) as T
  } catch (e) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} failed to load (${(e as Error).message}); rebuild it with \`pnpm build\``,
      { cause: e },
    )
  }
  if (mod.abiVersion !== expectAbi) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} is stale (binding version ${mod.abiVersion}, expected ${expectAbi}); rebuild it with \`pnpm build\``,
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
  inTxn(): boolean
  closed(): boolean
  readonly(): boolean
  path(): string
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
