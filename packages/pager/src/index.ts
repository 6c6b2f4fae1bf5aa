import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PersistError } from './errors.js'
import { Mem } from './mem.js'
import { loadNative, type NativePager, type NativeStats } from './native.js'

export { isPersistError, PersistError, type PersistErrorCode } from './errors.js'
export { Mem, WINDOW_STEP } from './mem.js'
export { loadNative, type NativePager, type NativeStats } from './native.js'

interface NativeModule {
  abiVersion: number
  formatVersion: number
  pageSize: number
  setErrorClass(cls: typeof PersistError): void
  PagerHandle: new (path: string, options: NativeOpenOptions) => NativePager
}
const native = loadNative<NativeModule>(dirname(dirname(fileURLToPath(import.meta.url))), 'pager', 3)
native.setErrorClass(PersistError)

/** Version of the on-file format this build reads and writes (FORMAT.md). */
export const FORMAT_VERSION: number = native.formatVersion
/** Page size in bytes (4096). */
export const PAGE_SIZE: number = native.pageSize
/** Number of u64 slots in the header for the layers above (slot 0 belongs to the heap). */
export const SLOT_COUNT = 8

/** Flags returned by `Pager.begin()`. */
export const BEGIN_CHANGED = 1
export const BEGIN_REMAPPED = 2
export const BEGIN_RECOVERED = 4

export type Durability = 'process' | 'full'

export interface PagerOptions {
  /** Create the file if it does not exist (default true). */
  create?: boolean
  /** Refuse every change (PERSIST_READONLY). A file without write permission is mapped read-only and unlocked. */
  readonly?: boolean
  /** 'process' (default): survives kill -9 of any process. 'full' is reserved (issue 10). */
  durability?: Durability
  /** Bytes of address space reserved: the largest the file can grow to in this process (default 256 GiB). */
  maxSize?: number
  /** How long begin() waits for the lock before PERSIST_LOCKED (default 10000 ms). */
  lockTimeoutMs?: number
  /** Permission bits of a new file (default 0o600). */
  mode?: number
}

/** @internal The options as the native layer takes them (validated). */
export interface NativeOpenOptions {
  create: boolean
  readonly: boolean
  durability: Durability
  maxSize: number
  lockTimeoutMs: number
  mode: number
}

export interface PagerStats extends NativeStats {}

const OPTION_KEYS = new Set(['create', 'readonly', 'durability', 'maxSize', 'lockTimeoutMs', 'mode'])

/**
 * Validates open options with precise TypeError/RangeError messages (before any
 * native code runs). Exported for the layers above, which accept the same options.
 */
export function validatePagerOptions(path: unknown, options: unknown): NativeOpenOptions {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`)
  if (path.length === 0) throw new TypeError('path must not be empty')
  if (path.includes('\0')) throw new TypeError('path must not contain NUL characters')
  const o: NativeOpenOptions = {
    create: true,
    readonly: false,
    durability: 'process',
    maxSize: 256 * 2 ** 30,
    lockTimeoutMs: 10_000,
    mode: 0o600,
  }
  if (options === undefined) return o
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('options must be an object')
  }
  const opts = options as Record<string, unknown>
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.has(k))
      throw new TypeError(`unknown option '${k}' (known: ${[...OPTION_KEYS].join(', ')})`)
  }
  const bool = (k: 'create' | 'readonly') => {
    const v = opts[k]
    if (v === undefined) return
    if (typeof v !== 'boolean') throw new TypeError(`options.${k} must be a boolean, got ${typeof v}`)
    o[k] = v
  }
  bool('create')
  bool('readonly')
  if (opts.durability !== undefined) {
    if (opts.durability !== 'process' && opts.durability !== 'full') {
      throw new TypeError(`options.durability must be 'process' or 'full', got ${String(opts.durability)}`)
    }
    o.durability = opts.durability
  }
  const int = (k: 'maxSize' | 'lockTimeoutMs' | 'mode', min: number, max: number) => {
    const v = opts[k]
    if (v === undefined) return
    if (typeof v !== 'number') throw new TypeError(`options.${k} must be a number, got ${typeof v}`)
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`options.${k} must be an integer between ${min} and ${max}, got ${v}`)
    }
    o[k] = v
  }
  int('maxSize', 1 << 20, 2 ** 46)
  int('lockTimeoutMs', 0, 2 ** 32 - 1)
  int('mode', 0, 0o7777)
  return o
}

function checkIndex(name: string, v: unknown): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`)
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${v}`)
}

function isThenable(v: unknown): boolean {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  )
}

/**
 * A store's page manager. Every read and write of the mapping happens inside a
 * transaction (begin/commit or transaction(fn)); `mem` gives the accessors.
 * The constructor takes a native handle so layers with their own addon (the heap)
 * can wrap their handle with the same class.
 */
export class Pager {
  /** Accessors over the mapped file (refreshed automatically after growth). */
  readonly mem: Mem = new Mem()
  protected readonly native: NativePager
  private gen = -1
  private isClosed = false

  constructor(handle: NativePager) {
    this.native = handle
    this.refreshMem()
  }

  /** @internal Re-creates the views when the mapping changed. */
  protected refreshMem(): void {
    const g = this.native.mapGeneration()
    if (g === this.gen) return
    this.gen = g
    this.mem._setWindows(this.native.windows(), this.native.mappedBytes())
  }

  private live(): NativePager {
    if (this.isClosed)
      throw new PersistError('PERSIST_CLOSED', 'the store is closed; open it again to use it')
    return this.native
  }

  /** The file path. */
  get path(): string {
    return this.live().path()
  }
  /** True after close(). */
  get closed(): boolean {
    return this.isClosed
  }
  /** Number of committed write transactions (header hd_txid). */
  get txid(): number {
    return this.live().txid()
  }
  /**
   * The txid given by this handle's latest commit that wrote something (0 if none).
   * Reading `txid` after `commit()` may already show another process's later commit.
   */
  get ownCommitTxid(): number {
    return this.live().ownCommitTxid()
  }
  /** True while a transaction is active on this handle. */
  get inTransaction(): boolean {
    return !this.isClosed && this.native.inTxn()
  }
  get readonly(): boolean {
    return this.live().readonly()
  }

  /**
   * Takes the store lock (waits up to lockTimeoutMs, then PERSIST_LOCKED) and starts
   * a transaction. Returns BEGIN_* flags: CHANGED (someone committed since this
   * handle's previous transaction), REMAPPED (the file grew; `mem` was refreshed),
   * RECOVERED (a dead holder's transaction was rolled back).
   */
  begin(): number {
    const flags = this.live().begin()
    // Compare the map generation rather than trusting BEGIN_REMAPPED alone: a remap
    // done by an earlier begin() that then threw (lock timeout, recovery error) is
    // reported by no flag, and the views must never lag the mapping.
    this.refreshMem()
    return flags
  }
  /** Makes the transaction permanent and releases the lock. */
  commit(): void {
    this.live().commit()
  }
  /** Undoes everything since begin() and releases the lock. */
  abort(): void {
    this.live().abort()
  }
  /** A token for rollbackTo(): undoes later writes, allocations and frees. */
  savepoint(): number {
    return this.live().savepoint()
  }
  rollbackTo(token: number): void {
    checkIndex('savepoint', token)
    this.live().rollbackTo(token)
  }

  /**
   * Runs fn in a transaction: commits if it returns, aborts and rethrows if it
   * throws. Nested calls join the outer transaction through a savepoint (a throw
   * undoes only the inner part). fn must be synchronous: returning a Promise (or any
   * thenable) aborts and throws PERSIST_TXN.
   */
  transaction<T>(fn: () => T): T {
    if (typeof fn !== 'function') throw new TypeError('transaction(fn): fn must be a function')
    const h = this.live()
    if (h.inTxn()) {
      const sp = h.savepoint()
      let r: T
      try {
        r = fn()
      } catch (e) {
        if (!this.isClosed && h.inTxn()) h.rollbackTo(sp)
        throw e
      }
      if (isThenable(r)) {
        h.rollbackTo(sp)
        throw new PersistError(
          'PERSIST_TXN',
          'a transaction cannot span await: transaction(fn) needs a synchronous fn',
        )
      }
      return r
    }
    this.begin()
    let r: T
    try {
      r = fn()
    } catch (e) {
      if (!this.isClosed && h.inTxn()) h.abort()
      throw e
    }
    if (isThenable(r)) {
      h.abort()
      throw new PersistError(
        'PERSIST_TXN',
        'a transaction cannot span await: transaction(fn) needs a synchronous fn',
      )
    }
    try {
      h.commit()
    } catch (e) {
      if (!this.isClosed && h.inTxn()) h.abort()
      throw e
    }
    return r
  }

  /** Write barrier: call before the first write to [offset, offset+length) in a transaction. */
  willWrite(offset: number, length: number): void {
    if (typeof offset !== 'number' || typeof length !== 'number') {
      throw new TypeError('willWrite(offset, length): both arguments must be numbers')
    }
    if (!(offset >= 0 && length >= 0) || !Number.isSafeInteger(offset + length)) {
      throw new RangeError(`willWrite: bad range offset=${offset} length=${length}`)
    }
    this.live().willWrite(offset, length)
  }

  /** Allocates n contiguous pages (fresh); returns the first page number. */
  allocPages(n: number): number {
    checkIndex('pages', n)
    if (n === 0) throw new RangeError('allocPages: pages must be at least 1')
    const p = this.live().allocPages(n)
    this.refreshMem()
    return p
  }
  /** Frees the run starting at page (applied at commit). */
  freePages(page: number): void {
    checkIndex('page', page)
    this.live().freePages(page)
  }
  /** Grows the run at page to `pages` pages in place; false if the next pages are taken. */
  extendRun(page: number, pages: number): boolean {
    checkIndex('page', page)
    checkIndex('pages', pages)
    const ok = this.live().extendRun(page, pages)
    this.refreshMem()
    return ok
  }
  /** Pages in the run starting at page (0 if page is not a run start). */
  runLength(page: number): number {
    checkIndex('page', page)
    return this.live().runLength(page)
  }
  /** First page of the allocated run containing page, or -1 if it is free. */
  runStart(page: number): number {
    checkIndex('page', page)
    return this.live().runStart(page)
  }

  /** Reads header slot i (0..7; slot 0 belongs to the heap). */
  slot(i: number): number {
    checkIndex('slot index', i)
    if (i >= SLOT_COUNT) throw new RangeError(`slot index must be below ${SLOT_COUNT}, got ${i}`)
    return this.live().slot(i)
  }
  /** Writes header slot i (journaled; needs a transaction). */
  setSlot(i: number, value: number): void {
    checkIndex('slot index', i)
    if (i >= SLOT_COUNT) throw new RangeError(`slot index must be below ${SLOT_COUNT}, got ${i}`)
    checkIndex('slot value', value)
    this.live().setSlot(i, value)
  }

  /**
   * Blocks this thread until a transaction is committed by another process or
   * handle (txid differs from `seenTxid`) or `timeoutMs` passes; returns whether a
   * commit happened. A futex wait, no polling (a read-only mapping polls every
   * 10 ms). Blocks the event loop: use it in a worker thread or a CLI.
   * Throws PERSIST_TXN inside a transaction.
   */
  waitForCommit(seenTxid: number, timeoutMs: number): boolean {
    checkIndex('seenTxid', seenTxid)
    checkIndex('timeoutMs', timeoutMs)
    return this.live().waitForCommit(seenTxid, timeoutMs)
  }

  /** Page counts, file size, txid, journal usage. */
  stats(): PagerStats {
    return this.live().stats()
  }
  /**
   * Verifies the header, the page map and the journal; returns the problems found
   * (empty when healthy). Runs inside a transaction (its own if none is active).
   */
  check(): string[] {
    const h = this.live()
    if (h.inTxn()) return h.check()
    this.begin()
    try {
      return h.check()
    } finally {
      h.commit()
    }
  }

  /** Aborts a transaction in flight, unmaps and closes. Idempotent. */
  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.mem._close()
    this.native.close()
  }
}

/**
 * Opens (or creates) a store file and returns its Pager.
 * Errors: PERSIST_NOT_FOUND, PERSIST_NOT_STORE, PERSIST_VERSION, PERSIST_CORRUPT,
 * PERSIST_PERM, PERSIST_IO, PERSIST_NOSPC, PERSIST_TOO_BIG, PERSIST_UNSUPPORTED;
 * TypeError/RangeError for bad arguments.
 */
export function openPager(path: string, options?: PagerOptions): Pager {
  const o = validatePagerOptions(path, options)
  return new Pager(new native.PagerHandle(path, o))
}
