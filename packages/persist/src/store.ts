/**
 * The Store: one open store file, its root proxy, and the transaction rule.
 *
 * The JS turn is the transaction
 * ------------------------------
 * JS runs a synchronous turn to completion. The first access to a store in a turn
 * takes the store's cross-process lock (Objects.begin) and schedules the commit as a
 * microtask, so everything the turn does to that store — `root.x += 1` included — is
 * one atomic, isolated transaction. An `await` ends the turn (the commit runs before
 * the awaited continuation). `transaction(fn)` is the explicit form: it commits when
 * fn returns and rolls back when it throws; nested calls join the outer one through
 * savepoints (an inner throw undoes only the inner part).
 *
 * Invariants
 *  S1 `txnOpen` is true exactly while this handle holds the store lock.
 *  S2 a commit microtask is scheduled whenever txnOpen became true outside an
 *     explicit transaction; it commits whatever turn transaction is open when it
 *     runs (a microtask never runs inside synchronous code, so that is the end of
 *     the turn) and does nothing when an explicit transaction already committed.
 *  S3 proxies hold (offset, generation); the first trap of each transaction checks
 *     the pair before touching memory (PERSIST_STALE); within a transaction a record
 *     cannot die except by rollback or gc(), and both mark the handles they kill.
 *  S4 only the code that opened the transaction ends it: transaction() called
 *     inside a turn (or inside another transaction()) joins it through a savepoint
 *     and leaves the commit to the end of the turn (or to the outer call).
 */
import { type ObjectHooks, Objects, type RecordKind } from '@persist/objects'
import { PersistError } from '@persist/pager'
import { type ClassInfo, classByName, classOfCtor, unknownClass } from './classes.js'
import { Handle, handleOfProxy, makeProxy, type ProxyHost } from './proxy.js'

export type Durability = 'process' | 'full'

export interface OpenOptions {
  /** 'process' (default): survives kill -9 of any process. 'full': survives power loss (issue 10). */
  durability?: Durability
  /** Open for reading only; writes throw PERSIST_READONLY. */
  readonly?: boolean
  /** Create the file when missing (default true). */
  create?: boolean
  /** How long a turn waits for another process's lock before PERSIST_LOCKED (default 10,000 ms). */
  lockTimeoutMs?: number
  /** Address space reserved for the mapping = maximum file size in bytes (default 256 GiB). */
  maxSize?: number
  /** Permission bits of a new file (default 0o600). */
  mode?: number
  /** How objects of unregistered classes are read: 'error' (default, PERSIST_UNKNOWN_CLASS) or 'dict'. */
  unknownClasses?: 'error' | 'dict'
  /** Interval of the change check behind watch()/changed(), ms (default 10). */
  pollIntervalMs?: number
  /**
   * Receives the error when the commit at the end of a turn fails (e.g. PERSIST_NOSPC,
   * or PERSIST_IO in 'full' mode): the turn was rolled back — or, for a failed log sync
   * after the commit record was written, is visible but may not survive a power cut,
   * and the handle refuses writes until reopened; the message says which. Without
   * it the error is thrown from the commit's microtask, which Node reports as an
   * unhandled rejection (by default the process exits, as for any uncaught error).
   * `transaction(fn)` throws such errors synchronously instead.
   */
  onCommitError?: (error: Error) => void
}

const RESOLVED = Promise.resolve()
const STALE_SWEEP = 1024

type Listener = (info: { txid: number }) => void

export class Store<T extends object = Record<string, any>> implements ProxyHost {
  readonly path: string
  readonly readonly: boolean
  readonly objects: Objects
  private readonly unknownClasses: 'error' | 'dict'
  private readonly pollIntervalMs: number
  private readonly onCommitError: ((error: Error) => void) | undefined
  #closed = false
  private txnOpen = false
  private explicitDepth = 0
  /** Transaction serial: bumped by every begin; handles verified in it skip the check. */
  private serial = 0
  private readonly cache = new Map<number, Handle>()
  private readonly finalizer = new FinalizationRegistry<number>((off) => {
    const h = this.cache.get(off)
    if (h && h.ref?.deref() === undefined) this.cache.delete(off)
  })
  private readonly commitTurn: () => void
  private listeners = new Set<Listener>()
  private pollTimer: NodeJS.Timeout | undefined
  private lastSeenTxid = 0
  private ownTxid = -1

  constructor(path: string, options: OpenOptions = {}) {
    validateOptions(options)
    this.path = path
    this.readonly = options.readonly ?? false
    this.unknownClasses = options.unknownClasses ?? 'error'
    this.pollIntervalMs = options.pollIntervalMs ?? 10
    this.onCommitError = options.onCommitError
    const hooks: ObjectHooks = {
      wrap: (off, kind) => this.wrap(off, kind),
      unwrap: (v) => this.unwrap(v),
      classOf: (v) => classOfValue(v),
      fieldsOf: (v) => fieldsOfInstance(v),
    }
    this.objects = Objects.open(path, {
      durability: options.durability,
      readonly: options.readonly,
      create: options.create,
      lockTimeoutMs: options.lockTimeoutMs,
      maxSize: options.maxSize,
      mode: options.mode,
      hooks,
    })
    // Microtasks run only after the synchronous code of the turn, so whichever
    // scheduled commit runs first ends the turn's transaction (S2).
    this.commitTurn = () => {
      if (!this.txnOpen || this.explicitDepth !== 0) return
      try {
        this.finish(true) // rolls the turn back if the commit fails
      } catch (e) {
        if (!this.onCommitError) throw e
        this.onCommitError(e as Error)
      }
    }
  }

  /** The root dict of the store, as a proxy that behaves like a plain object. */
  get root(): T {
    this.checkOpen()
    this.open()
    return this.wrap(this.objects.rootOff, 'dict') as T
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * Runs fn as one atomic transaction: all or nothing, isolated from other processes.
   * Called outside a turn's transaction, it commits when fn returns. Called inside a
   * turn that already touched the store, or inside another transaction(), it joins
   * that transaction (which commits at the end of the turn / outer call); a throw
   * undoes only fn's part.
   * fn must be synchronous: a returned Promise aborts and throws PERSIST_TXN.
   */
  transaction<R>(fn: () => R): R {
    if (typeof fn !== 'function') throw new TypeError('transaction(fn): fn must be a function')
    this.checkOpen()
    // Outermost call outside a turn: we open the transaction ourselves, so a throw
    // aborts it whole (no savepoint needed) and we commit on return (no microtask).
    // Inside a turn or another transaction we join through a savepoint, and the
    // commit stays with whoever opened the transaction (S4): committing here would
    // release the lock in the middle of the turn.
    const fresh = !this.txnOpen
    if (fresh) this.open(false)
    const sp = fresh ? -1 : this.objects.savepoint()
    this.explicitDepth++
    let result: R
    try {
      result = fn()
    } catch (e) {
      this.explicitDepth--
      this.undo(sp)
      throw e
    }
    this.explicitDepth--
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as { then?: unknown }).then === 'function'
    ) {
      this.undo(sp)
      throw new PersistError(
        'PERSIST_TXN',
        'transaction(fn): fn returned a Promise — a transaction cannot span an await; do the async work first, then call transaction() with a synchronous function',
      )
    }
    if (fresh) this.finish(true)
    return result
  }

  /** Undoes a transaction() body: the whole transaction if it opened it, else back to its savepoint. */
  private undo(sp: number): void {
    if (sp < 0) this.finish(false)
    else this.rollbackTo(sp)
  }

  /** Collects unreachable cycles and returns what was freed. */
  gc(): { freedObjects: number; freedBytes: number } {
    return this.transaction(() => {
      const freed = this.objects.gc()
      this.killDeadProxies()
      return freed
    })
  }

  /** Statistics of the pager, heap and object layers. */
  stats(): ReturnType<Objects['stats']> & { path: string } {
    return { path: this.path, ...this.transaction(() => this.objects.stats()) }
  }

  /** Verifies the whole store; returns a list of problems (empty when consistent). */
  check(): string[] {
    return this.transaction(() => this.objects.check())
  }

  /**
   * Calls cb after another process (or another handle) commits a change. Returns a
   * function that stops watching. Detection is a check of the header's transaction
   * counter every pollIntervalMs (default 10 ms): no lock, no syscall, so idle cost is
   * one timer tick; latency is at most one interval.
   */
  watch(cb: Listener): () => void {
    if (typeof cb !== 'function') throw new TypeError('watch(cb): cb must be a function')
    this.checkOpen()
    this.listeners.add(cb)
    this.startPolling()
    return () => {
      this.listeners.delete(cb)
      if (this.listeners.size === 0) this.stopPolling()
    }
  }

  /** Resolves at the next commit made through another handle or process. */
  changed(): Promise<{ txid: number }> {
    return new Promise((resolve) => {
      const stop = this.watch((info) => {
        stop()
        resolve(info)
      })
    })
  }

  /** Commits a pending turn, releases the lock and unmaps the file. Idempotent. */
  close(): void {
    if (this.#closed) return
    let failed: unknown
    if (this.txnOpen) {
      // Cleared first: when the commit throws (e.g. PERSIST_CORRUPT from a damaged
      // heap), the turn's commit microtask must not commit again on a closed pager.
      this.txnOpen = false
      try {
        if (this.explicitDepth > 0) this.objects.abort()
        else this.objects.commit()
      } catch (e) {
        failed = e // the store still closes (objects.close() aborts what is left), then rethrows
      }
    }
    this.stopPolling()
    this.listeners.clear()
    for (const h of this.cache.values()) h.dead = true
    this.cache.clear()
    this.objects.close()
    this.#closed = true
    if (failed !== undefined) throw failed
  }

  // ---- ProxyHost -----------------------------------------------------------

  enter(h: Handle): void {
    if (!this.txnOpen) {
      if (this.#closed) throw closedError(this.path)
      this.open()
    }
    // A record verified live in this transaction stays live until its end: frees
    // happen at commit, and rollback/gc mark the handles they kill as dead (S3).
    if (h.seen === this.serial && !h.dead) return
    if (h.dead || !this.objects.isLive(h.off, h.gen)) {
      h.dead = true
      throw new PersistError(
        'PERSIST_STALE',
        `this ${h.kind} was removed from the store (record 0x${h.off.toString(16)}, generation ${h.gen}); read it again from its parent`,
      )
    }
    h.seen = this.serial
  }

  writeGuard(): void {
    if (this.readonly)
      throw new PersistError(
        'PERSIST_READONLY',
        `${this.path} was opened read-only; open it without { readonly: true } to write`,
      )
  }

  snapshot(h: Handle): unknown {
    this.enter(h)
    return this.objects.toJSRecord(h.off)
  }

  // ---- internals -----------------------------------------------------------

  private checkOpen(): void {
    if (this.#closed) throw closedError(this.path)
  }

  /** Begins the turn's transaction (S1, S2); `turn` schedules its commit at the end of the turn. */
  private open(turn = true): void {
    if (this.txnOpen) return
    const flags = this.objects.begin()
    this.txnOpen = true
    this.serial++
    if (flags & 1) this.sweepCache()
    if (turn && this.explicitDepth === 0) RESOLVED.then(this.commitTurn)
  }

  private finish(commit: boolean): void {
    if (!this.txnOpen) return
    this.txnOpen = false
    if (commit) {
      try {
        this.objects.commit()
      } catch (e) {
        try {
          this.objects.abort()
        } catch {}
        this.killDeadProxies()
        throw e
      }
      // Not committedTxid(): the lock is released, another process may have committed.
      this.ownTxid = this.objects.pager.ownCommitTxid
    } else {
      this.objects.abort()
      this.killDeadProxies()
    }
  }

  private rollbackTo(sp: number): void {
    this.objects.rollbackTo(sp)
    this.killDeadProxies()
  }

  /** After a rollback or gc, proxies of records that no longer exist must not be used (S3). */
  private killDeadProxies(): void {
    for (const [off, h] of this.cache) {
      if (h.ref?.deref() === undefined || !this.objects.isLive(h.off, h.gen)) {
        h.dead = true
        this.cache.delete(off)
      }
    }
  }

  /** Another process committed: drop cache entries of records that no longer exist. */
  private sweepCache(): void {
    if (this.cache.size < STALE_SWEEP) return
    this.killDeadProxies()
  }

  private wrap(off: number, kind: RecordKind): object {
    const gen = this.objects.gen(off)
    const cached = this.cache.get(off)
    if (cached) {
      const p = cached.ref?.deref()
      if (p && cached.gen === gen && !cached.dead) return p
      cached.dead = true
    }
    let cls: ClassInfo | undefined
    let k: 'dict' | 'list' | 'object' = kind
    if (kind === 'object') {
      const name = this.objects.className(off) ?? ''
      cls = classByName(name)
      if (!cls) {
        if (this.unknownClasses !== 'dict') throw unknownClass(name)
        k = 'dict'
      }
    }
    const h = new Handle(this, off, gen, k, cls)
    const p = makeProxy(h)
    h.seen = this.serial
    this.cache.set(off, h)
    this.finalizer.register(p, off)
    if (cls) {
      const onLoad = (cls.ctor.prototype as { onLoad?: unknown }).onLoad
      if (typeof onLoad === 'function') onLoad.call(p)
    }
    return p
  }

  private unwrap(v: object): number | undefined {
    const h = handleOfProxy(v)
    if (!h || h.store !== this) return undefined
    this.enter(h)
    return h.off
  }

  private startPolling(): void {
    if (this.pollTimer) return
    this.lastSeenTxid = this.committedTxid()
    this.pollTimer = setInterval(() => {
      if (this.#closed) return
      const txid = this.committedTxid()
      if (txid === this.lastSeenTxid) return
      this.lastSeenTxid = txid
      if (txid === this.ownTxid) return
      for (const cb of [...this.listeners]) cb({ txid })
    }, this.pollIntervalMs)
  }

  /** hd_txid (FORMAT.md: header offset 32), read without the lock: an aligned 8-byte load. */
  private committedTxid(): number {
    return this.objects.pager.mem.u64(32)
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer)
    this.pollTimer = undefined
  }
}

function closedError(path: string): PersistError {
  return new PersistError('PERSIST_CLOSED', `the store ${path} is closed; open it again to use it`)
}

function classOfValue(v: object): string | undefined {
  const proto = Object.getPrototypeOf(v)
  if (proto === null || proto === Object.prototype) return undefined
  const ctor = (proto as { constructor?: unknown }).constructor
  if (typeof ctor !== 'function') return undefined
  return classOfCtor(ctor)?.name
}

function fieldsOfInstance(v: object): Iterable<[string, unknown]> {
  const syms = Object.getOwnPropertySymbols(v)
  if (syms.length)
    throw new TypeError(
      `${v.constructor?.name ?? 'object'}: symbol-keyed fields cannot be stored (${String(syms[0])})`,
    )
  return Object.entries(v)
}

const OPTION_KEYS = new Set([
  'durability',
  'readonly',
  'create',
  'lockTimeoutMs',
  'maxSize',
  'mode',
  'unknownClasses',
  'pollIntervalMs',
  'onCommitError',
])

function validateOptions(o: OpenOptions): void {
  if (o === null || typeof o !== 'object')
    throw new TypeError('open(path, options): options must be an object')
  for (const k of Object.keys(o))
    if (!OPTION_KEYS.has(k)) throw new TypeError(`open(): unknown option '${k}'`)
  if (o.durability !== undefined && o.durability !== 'process' && o.durability !== 'full')
    throw new TypeError(`open(): durability must be 'process' or 'full', not ${JSON.stringify(o.durability)}`)
  for (const k of ['readonly', 'create'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new TypeError(`open(): ${k} must be a boolean`)
  if (o.unknownClasses !== undefined && o.unknownClasses !== 'error' && o.unknownClasses !== 'dict')
    throw new TypeError(`open(): unknownClasses must be 'error' or 'dict'`)
  if (
    o.pollIntervalMs !== undefined &&
    !(Number.isInteger(o.pollIntervalMs) && o.pollIntervalMs >= 1 && o.pollIntervalMs <= 60_000)
  )
    throw new RangeError('open(): pollIntervalMs must be an integer from 1 to 60000')
  if (o.onCommitError !== undefined && typeof o.onCommitError !== 'function')
    throw new TypeError('open(): onCommitError must be a function')
}
