/**
 * @persist/objects — persistent values (int, float, string, bytes, list, dict, class
 * records) with reference counts and a cycle collector, read and written straight in
 * the mapped file through the pager's Mem accessors. Native calls happen only for
 * alloc/free (heap), the write barrier (willWrite) and the lock (begin/commit).
 *
 * Layout: FORMAT.md "## Objects" and src/format.ts.
 *
 * Invariants (check() verifies them; code cites them):
 *  O1  Every record (dict, list, object) reachable from the root dict or listed in the
 *      pending set has rc_type in {1,2,3}, rc_gen != 0 and rc_check == rc_gen ^ off/16 ^ salt.
 *  O2  rc_refs == number of T_REF slots in reachable (or pending) records pointing to it,
 *      +1 for the root dict (held by the meta block).
 *  O3  A record whose rc_refs reaches 0 is not freed at once: it goes to the pending set
 *      and is freed at commit() if its count is still 0 (deferred reference counting),
 *      so `b.push(a.pop())` in one transaction moves a record without freeing it.
 *      New records start at 0 and pending. Frees recurse (with an explicit stack).
 *  O4  String, bytes and big-bigint blocks are owned by exactly one slot (never shared):
 *      releasing the slot frees the block at once (no handle can point at it).
 *  O5  Dict: count <= used <= cap; nbuckets == 2*cap (load <= 1/2 with tombstones, so a
 *      probe always ends at an empty bucket); every live entry is reachable by linear
 *      probing from hash & (nbuckets-1); a deleted entry has key tag T_DELETED and a
 *      zero value slot; entry order == insertion order.
 *  O6  List: len <= cap; slots [len, cap) are all zero (T_UNDEF), so growing the
 *      length needs no write and no released value is owned twice.
 *  O7  Strings are encoded canonically: latin1 iff every code unit < 256; inline when
 *      short (T_SSTR <= 14 bytes, T_SSTR16 <= 7 code units).
 *  O8  Every write to file bytes is preceded, in the same transaction, by
 *      pager.willWrite covering them (the pager journals each 64-byte line once).
 *  O9  Generations are handed out from om_next_gen (and a process-local high-water
 *      mark, so a rollback never makes this process reuse a generation); a freed record
 *      has rc_type = rc_gen = 0. isLive(off, gen) also requires gen < om_next_gen, so a
 *      record created after a rolled-back savepoint is not live.
 *  O10 The JS key cache (dict → key → entry offset) only holds positions valid in the
 *      current file: an entry array moves only in dictResize (which drops that dict's
 *      cache); delete, clear, free, gc, abort, rollback and another process's commit
 *      (begin() flag 1) drop the affected entries.
 *  O12 The key listing memo (dictKeys → the entry offset of each key, with a cursor)
 *      is used only while `epoch` is unchanged: epoch is bumped wherever O10 drops a
 *      dict's cache (an entry may move or die: resize, delete, clear, free, gc, abort,
 *      rollback, another process's commit), so, like the key cache, it stays valid
 *      across this process's own commits. An in-place value update or an insert
 *      without resize moves no entry (a listing is reused only if dc_used is unchanged).
 *  O11 The file is untrusted input: every offset, length and count read from it is
 *      checked against the mapping before it is used — record offsets in slots
 *      (recordAt: aligned, past page 0, inside the mapping, a record type byte
 *      equal to the slot's; rc_gen/rc_check are for isLive and check()), dict arrays
 *      and counts (dictArrays), list arrays (listItems), string/bytes/bigint blocks,
 *      bucket entry numbers and short-string lengths. A failed check throws PERSIST_CORRUPT naming the offset, never a
 *      RangeError; walks are bounded by counts checked this way, so a crafted cycle
 *      cannot make a read loop forever.
 */
import { openHeap } from '@persist/heap'
import { type Mem, type Pager, type PagerOptions, PersistError } from '@persist/pager'
import {
  BUCKET,
  CHECK_SALT,
  DC_CAP,
  DC_CLASS,
  DC_COUNT,
  DC_ENTRIES,
  DC_INDEX,
  DC_NBUCKETS,
  DC_USED,
  DICT_SIZE,
  DUMMY,
  ENC_LATIN1,
  ENC_UTF16,
  ENTRY,
  LIST_SIZE,
  LS_CAP,
  LS_ITEMS,
  LS_LEN,
  META_MAGIC,
  META_SIZE,
  OBJECTS_VERSION,
  OM_MAGIC,
  OM_NEXT_GEN,
  OM_ROOT,
  OM_VERSION,
  R_DICT,
  R_LIST,
  R_OBJECT,
  RC_CHECK,
  RC_GEN,
  RC_REFS,
  SLOT,
  SSTR_MAX,
  SSTR16_MAX,
  T_BIGINT,
  T_BIGREC,
  T_BYTES,
  T_DATE,
  T_DELETED,
  T_FALSE,
  T_FLOAT,
  T_INT,
  T_MAX,
  T_NULL,
  T_REF,
  T_SSTR,
  T_SSTR16,
  T_STR,
  T_TRUE,
  T_UNDEF,
} from './format.js'
import { hash32 } from './hash.js'

export type RecordKind = 'dict' | 'list' | 'object'

export interface ObjectHooks {
  /** A read found a record: return the JS handle for it (persist: a Proxy). */
  wrap(off: number, kind: RecordKind): unknown
  /** v is a handle of THIS store? → its record offset (else v is deep-copied). */
  unwrap(v: object): number | undefined
  /** Class name to store a non-plain object under, else undefined (→ TypeError). */
  classOf(v: object): string | undefined
  /** Fields of a class instance (default: own enumerable string keys). */
  fieldsOf?(v: object): Iterable<[string, unknown]>
}

/** What this layer needs from @persist/heap (its Heap class satisfies it). */
export interface HeapLike {
  readonly pager: Pager
  alloc(size: number, options?: { zero?: boolean }): number
  free(off: number): void
  realloc(off: number, size: number): number
  usableSize(off: number): number
  root(i: number): number
  setRoot(i: number, off: number): void
  /** Offsets of every live block. */
  blocks(): Iterable<number>
  stats(): object
  check(): string[]
  close(): void
}

export type OpenOptions = PagerOptions & { hooks?: Partial<ObjectHooks> }
type Heap = HeapLike

/** The default handle when no hooks are given: a plain reference to a record. */
export class RecordRef {
  constructor(
    readonly objects: Objects,
    readonly off: number,
    readonly kind: RecordKind,
    readonly gen: number,
  ) {}
}

const KINDS: RecordKind[] = ['dict', 'dict', 'list', 'object']
const TWO32 = 4294967296
/** Reused argument arrays for decoding short Latin-1 strings (index = length). */
const SHORT_CODES: number[][] = Array.from({ length: SSTR_MAX + 1 }, (_, n) => new Array<number>(n).fill(0))
/** Page 0 is the pager's header (FORMAT.md): no heap block starts below this byte offset. */
const MIN_BLOCK = 4096
const NOT_LATIN1 = /[^\0-\xff]/

function hex(off: number): string {
  return `0x${off.toString(16)}`
}

function corrupt(msg: string): PersistError {
  return new PersistError(
    'PERSIST_CORRUPT',
    `${msg}; the store is damaged: run \`persist check FILE\` (or check()) for details and restore from a backup`,
  )
}

function nextPow2(n: number): number {
  let p = 4
  while (p < n) p *= 2
  return p
}

function joinPath(base: string | undefined, key: string | number): string {
  const b = base ?? 'value'
  if (typeof key === 'number') return `${b}[${key}]`
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${b}.${key}` : `${b}[${JSON.stringify(key)}]`
}

function checkIndex(i: number, what: string): void {
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > 0xfffffffe) {
    throw new RangeError(`${what}: expected an integer index in [0, 2^32-2], got ${String(i)}`)
  }
}

function needsCheck(x: unknown): boolean {
  const t = typeof x
  return t === 'object' ? x !== null : t === 'function' || t === 'symbol'
}

function isPlainProto(v: object): boolean {
  const p = Object.getPrototypeOf(v)
  return p === Object.prototype || p === null
}

function bytesSubtype(v: object): number {
  if (v instanceof ArrayBuffer) return 11
  if (Buffer.isBuffer(v)) return 13
  if (v instanceof DataView) return 12
  if (v instanceof Uint8Array) return 0
  if (v instanceof Int8Array) return 1
  if (v instanceof Uint8ClampedArray) return 2
  if (v instanceof Int16Array) return 3
  if (v instanceof Uint16Array) return 4
  if (v instanceof Int32Array) return 5
  if (v instanceof Uint32Array) return 6
  if (v instanceof Float32Array) return 7
  if (v instanceof Float64Array) return 8
  if (v instanceof BigInt64Array) return 9
  if (v instanceof BigUint64Array) return 10
  return -1
}

/** Element size in bytes of each T_BYTES subtype (format.ts BYTES_CLASSES order). */
const BYTES_ELEMENT = [1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1, 1]

function makeBytes(sub: number, copy: Uint8Array): unknown {
  const b = copy.buffer
  switch (sub) {
    case 0:
      return copy
    case 1:
      return new Int8Array(b)
    case 2:
      return new Uint8ClampedArray(b)
    case 3:
      return new Int16Array(b)
    case 4:
      return new Uint16Array(b)
    case 5:
      return new Int32Array(b)
    case 6:
      return new Uint32Array(b)
    case 7:
      return new Float32Array(b)
    case 8:
      return new Float64Array(b)
    case 9:
      return new BigInt64Array(b)
    case 10:
      return new BigUint64Array(b)
    case 11:
      return b
    case 12:
      return new DataView(b)
    case 13:
      return Buffer.from(b)
    default:
      throw corrupt(`unknown bytes subtype ${sub}`)
  }
}

function unsupported(v: object): string {
  if (v instanceof Map) return 'Map objects cannot be stored (use a plain object with string keys)'
  if (v instanceof Set) return 'Set objects cannot be stored (use an array)'
  if (
    v instanceof WeakMap ||
    v instanceof WeakSet ||
    (typeof WeakRef !== 'undefined' && v instanceof WeakRef)
  )
    return `${v.constructor.name} objects cannot be stored`
  if (v instanceof Promise) return 'Promises cannot be stored (await the value first)'
  if (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer)
    return 'SharedArrayBuffer cannot be stored (copy it into a Uint8Array)'
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name
  return `instances of ${typeof name === 'string' && name ? name : 'this class'} cannot be stored (register the class, or store a plain object)`
}

interface KeyMemo {
  d: number
  epoch: number
  /** dc_used when listed: an insert makes the listing incomplete (but moves no entry) */
  used: number
  keys: string[]
  ents: number[]
  pos: number
}

interface Walk {
  /** every block the graph owns (meta, records, entry/index/item arrays, strings, bytes), garbage included */
  reach: Set<number>
  /** records reached from the root or the pending set (the first `live` of `records`) */
  live: number
  /** blocks owned by unreachable records (walked with `garbage`): what gc() would free */
  garbage: Set<number>
  /** record → references found from walked records */
  counts: Map<number, number>
  records: number[]
  strings: number
  bytes: number
  bigints: number
}

export class Objects {
  hooks: ObjectHooks
  readonly heap: Heap
  readonly pager: Pager
  /** The meta block (heap root slot 0). */
  readonly metaOff: number
  /** The root dict record. */
  readonly rootOff: number

  private mem: Mem
  private pending: number[] = []
  private pendingSet = new Set<number>()
  private savepoints = new Map<number, number>()
  private genHigh = 0
  // Per-dict cache key → entry offset (O10): valid while the dict's entry array does
  // not move. Dropped for a dict on resize/clear/free, and entirely when begin()
  // reports another process's commit, on abort/rollback and gc.
  private kc = new Map<number, Map<string, number>>()
  private kcSize = 0
  // 64-byte lines this layer already passed to willWrite since the latest
  // begin/savepoint (the pager journals a line once per savepoint level, I11 of
  // pager.cc): a JS Set lookup replaces a native call on repeated writes (O8).
  private lines = new Set<number>()
  private ranges: number[] = [] // [start, end) pairs of big ranges already journaled
  // O12: bumped whenever a dict entry may have moved or died.
  private epoch = 0
  // O12: the latest dictKeys() listing — keys in insertion order, their entry offsets
  // and a cursor — so that the per-key calls that follow a listing (a proxy's
  // getOwnPropertyDescriptor and get for Object.keys/entries, for…in, spread) find
  // each entry with one string comparison instead of a hash lookup, and listing the
  // same dict again returns the same key strings (V8 has internalized them once).
  private memo: KeyMemo | null = null

  /** Opens (or creates) a store file and its objects layer. Options as openHeap's. */
  static open(path: string, options: OpenOptions = {}): Objects {
    if (options === null || typeof options !== 'object')
      throw new TypeError('Objects.open: options must be an object')
    const { hooks, ...heapOptions } = options
    const heap: HeapLike = openHeap(path, heapOptions)
    try {
      return new Objects(heap, hooks)
    } catch (e) {
      heap.close()
      throw e
    }
  }

  /** Wraps an open heap; initialises the meta block and the root dict on first use. */
  constructor(heap: Heap, hooks?: Partial<ObjectHooks>) {
    if (heap === null || typeof heap !== 'object' || !heap.pager)
      throw new TypeError('new Objects(heap): expected a Heap')
    this.heap = heap
    this.pager = heap.pager
    this.mem = heap.pager.mem
    this.hooks = {
      wrap: hooks?.wrap ?? ((off, kind) => new RecordRef(this, off, kind, this.gen(off))),
      unwrap: hooks?.unwrap ?? ((v) => (v instanceof RecordRef && v.objects === this ? v.off : undefined)),
      classOf: hooks?.classOf ?? (() => undefined),
      fieldsOf: hooks?.fieldsOf,
    }
    const own = !this.pager.inTransaction
    if (own) this.pager.begin()
    try {
      let meta = heap.root(0)
      if (meta === 0) {
        if (this.pager.readonly)
          throw new PersistError(
            'PERSIST_READONLY',
            'this store has no objects yet and it was opened read-only; open it once without { readonly: true }',
          )
        meta = this.initMeta()
      }
      this.metaOff = meta
      this.validateMeta(meta)
      this.rootOff = this.mem.u64(meta + OM_ROOT)
      if (own) {
        this.flushPending()
        this.pager.commit()
      }
      this.clearLines()
    } catch (e) {
      if (own && this.pager.inTransaction) this.pager.abort()
      throw e
    }
  }

  private initMeta(): number {
    const m = this.mem
    const meta = this.heap.alloc(META_SIZE, { zero: true })
    this.ww(meta, META_SIZE)
    m.bytes(meta, META_SIZE).fill(0)
    m.writeLatin1(meta + OM_MAGIC, META_MAGIC)
    m.setU32(meta + OM_VERSION, OBJECTS_VERSION)
    m.setU32(meta + OM_NEXT_GEN, 1)
    ;(this as { metaOff: number }).metaOff = meta
    const root = this.newDict(0, undefined)
    m.setU32(root + RC_REFS, 1) // O2: the meta block holds the root
    m.setU64(meta + OM_ROOT, root)
    this.heap.setRoot(0, meta)
    return meta
  }

  private validateMeta(meta: number): void {
    const m = this.mem
    if (meta % 16 !== 0 || meta + META_SIZE > m.size)
      throw corrupt(`heap root 0 (${hex(meta)}) is not an objects meta block`)
    if (m.latin1(meta + OM_MAGIC, 8) !== META_MAGIC)
      throw new PersistError(
        'PERSIST_CORRUPT',
        `heap root 0 (${hex(meta)}) does not hold @persist/objects data (bad magic): this heap is used by something else`,
      )
    const v = m.u32(meta + OM_VERSION)
    if (v > OBJECTS_VERSION)
      throw new PersistError(
        'PERSIST_VERSION',
        `the objects layer of this store has format version ${v}; this @persist/objects reads version ${OBJECTS_VERSION}: upgrade @persist/objects`,
      )
    const root = m.u64(meta + OM_ROOT)
    if (!this.isRecordAt(root) || m.u8(root) !== R_DICT)
      throw corrupt(
        `the root dict pointer ${hex(root)} (in the objects meta block at ${hex(meta)}) is invalid`,
      )
  }

  // ---- bounds checks on offsets read from the file (O11) --------------------------

  /** [b, b+n) is a plausible heap range: 16-byte aligned, past page 0, inside the mapping. */
  private inHeap(b: number, n: number): boolean {
    return b % 16 === 0 && b >= MIN_BLOCK && b + n <= this.mem.size
  }

  /** O11: throws PERSIST_CORRUPT unless [b, b+n) is inHeap (`what` of the record at `rec`: the message is built only on failure). */
  private span(b: number, n: number, kind: string, rec: number, what: string): void {
    if (!this.inHeap(b, n))
      throw corrupt(
        `${kind} ${hex(rec)} ${what} points to ${hex(b)} (+${n} bytes), which is not inside the heap (${hex(this.mem.size)} bytes mapped)`,
      )
  }

  /** A valid record header at r (O1): in the heap, type 1..3, generation and check word. */
  private isRecordAt(r: number): boolean {
    if (!this.inHeap(r, LIST_SIZE)) return false
    const m = this.mem
    const t = m.u8(r)
    if (t < R_DICT || t > R_OBJECT || (t !== R_LIST && r + DICT_SIZE > m.size)) return false
    const g = m.u32(r + RC_GEN)
    return g !== 0 && m.u32(r + RC_CHECK) === (g ^ (r / 16) ^ CHECK_SALT) >>> 0
  }

  /** O11: the record a T_REF slot s points to, validated (a damaged file throws PERSIST_CORRUPT). */
  private recordAt(s: number): number {
    const m = this.mem
    const r = m.u64(s + 8)
    const t = m.u8(s + 1)
    // Hot path (every read of a reference): alignment, bounds and the type byte are
    // what memory safety needs; rc_gen/rc_check are left to isLive and check().
    if (
      r % 16 === 0 &&
      r >= MIN_BLOCK &&
      r + (t === R_LIST ? LIST_SIZE : DICT_SIZE) <= m.size &&
      t >= R_DICT &&
      t <= R_OBJECT &&
      m.u8(r) === t
    )
      return r
    if (!this.isRecordAt(r)) {
      const what = this.inHeap(r, 16) ? `which is not a record (type ${m.u8(r)})` : 'outside the heap'
      throw corrupt(`the reference in slot ${hex(s)} points to ${hex(r)}, ${what}`)
    }
    if (m.u8(s + 1) !== m.u8(r))
      throw corrupt(
        `the reference in slot ${hex(s)} says record type ${m.u8(s + 1)}, the record at ${hex(r)} has type ${m.u8(r)}`,
      )
    return r
  }

  /** O5, O11: the dict header's counts agree and its two arrays lie inside the heap. */
  private dictArrays(d: number): void {
    const m = this.mem
    const count = m.u32(d + DC_COUNT)
    const used = m.u32(d + DC_USED)
    const cap = m.u32(d + DC_CAP)
    const nb = m.u32(d + DC_NBUCKETS)
    const ents = m.u64(d + DC_ENTRIES)
    const idx = m.u64(d + DC_INDEX)
    if (cap === 0) {
      if (count !== 0 || used !== 0 || nb !== 0 || ents !== 0 || idx !== 0)
        throw corrupt(`dict ${hex(d)}: no capacity but non-zero counts or arrays`)
      return
    }
    if (!(count <= used && used <= cap && nb === 2 * cap && (cap & (cap - 1)) === 0))
      throw corrupt(
        `dict ${hex(d)}: count ${count}, used ${used}, capacity ${cap}, buckets ${nb} are inconsistent`,
      )
    this.span(ents, cap * ENTRY, 'dict', d, 'entries')
    this.span(idx, nb * BUCKET, 'dict', d, 'index')
  }

  /** O6, O11: the list's items block (0 when capacity is 0), checked to lie inside the heap. */
  private listItems(l: number): number {
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    const cap = m.u32(l + LS_CAP)
    const items = m.u64(l + LS_ITEMS)
    if (cap === 0) {
      if (len !== 0 || items !== 0) throw corrupt(`list ${hex(l)}: length ${len} with no capacity`)
      return 0
    }
    if (len > cap) throw corrupt(`list ${hex(l)}: length ${len} exceeds capacity ${cap}`)
    this.span(items, cap * SLOT, 'list', l, 'items')
    return items
  }

  /** O11: a string, bytes or bigint block of n bytes named by slot s. */
  private blockAt(s: number, n: number): number {
    const b = this.mem.u64(s + 8)
    if (!(b >= MIN_BLOCK && b + n <= this.mem.size))
      throw corrupt(
        `the ${n}-byte block of slot ${hex(s)} is at ${hex(b)}, outside the heap (${hex(this.mem.size)} bytes mapped)`,
      )
    return b
  }

  /** A dict key slot decoded (O5: keys are strings). */
  private readKey(e: number): string {
    const t = this.mem.u8(e)
    if (t !== T_SSTR && t !== T_SSTR16 && t !== T_STR)
      throw corrupt(`dict key slot ${hex(e)} has tag ${t}, not a string`)
    return this.readSlot(e) as string
  }

  // ---- transactions ------------------------------------------------------------

  /** Takes the store lock. Returns the pager's flags (1 = another process committed, 2 = remapped). */
  begin(): number {
    const f = this.pager.begin()
    this.clearLines()
    this.mem = this.pager.mem
    if (f & 1) this.dropCaches()
    return f
  }

  /** Frees records left with no references (O3), then commits. */
  commit(): void {
    try {
      this.flushPending()
    } catch (e) {
      this.abort()
      throw e
    }
    this.pager.commit()
    this.clearLines()
    this.savepoints.clear()
  }

  /** O8: willWrite, skipping the native call when every line is already journaled. */
  private ww(off: number, len: number): void {
    const l0 = Math.floor(off / 64)
    const l1 = Math.floor((off + len - 1) / 64)
    const lines = this.lines
    if (l0 === l1 && lines.has(l0)) return
    const rs = this.ranges
    for (let i = 0; i < rs.length; i += 2) if (off >= rs[i] && off + len <= rs[i + 1]) return
    if (l0 === l1) {
      this.pager.willWrite(off, len)
      if (lines.size < 1_000_000) lines.add(l0)
      return
    }
    if (l1 - l0 > 16) {
      // a big range (a new array or string): remember it whole
      this.pager.willWrite(off, len)
      if (rs.length >= 32) rs.splice(0, 2)
      rs.push(off, off + len)
      return
    }
    for (let l = l0; l <= l1; l++) {
      if (!lines.has(l)) {
        this.pager.willWrite(off, len)
        if (lines.size < 1_000_000) for (let k = l0; k <= l1; k++) lines.add(k)
        return
      }
    }
  }

  private clearLines(): void {
    this.lines.clear()
    this.ranges.length = 0
  }

  /** Forgets every cached key position (another process may have changed any dict). */
  dropCaches(): void {
    this.kc.clear()
    this.kcSize = 0
    this.epoch++ // O12
  }

  abort(): void {
    this.clearLines()
    this.dropCaches()
    this.memo = null
    this.pending.length = 0
    this.pendingSet.clear()
    this.savepoints.clear()
    this.pager.abort()
  }

  savepoint(): number {
    const t = this.pager.savepoint()
    this.clearLines()
    this.savepoints.set(t, this.pending.length)
    return t
  }

  rollbackTo(t: number): void {
    this.pager.rollbackTo(t)
    this.clearLines()
    this.dropCaches()
    const n = this.savepoints.get(t)
    if (n !== undefined && n < this.pending.length) {
      for (let i = n; i < this.pending.length; i++) this.pendingSet.delete(this.pending[i])
      this.pending.length = n
    }
    for (const k of this.savepoints.keys()) if (k > t) this.savepoints.delete(k)
  }

  get inTransaction(): boolean {
    return this.pager.inTransaction
  }

  close(): void {
    if (this.pager.closed) return
    if (this.pager.inTransaction) this.abort()
    this.heap.close()
  }

  // ---- records -----------------------------------------------------------------

  kind(off: number): RecordKind {
    const t = this.mem.u8(off)
    if (t < R_DICT || t > R_OBJECT) throw this.stale(off, this.mem.u32(off + RC_GEN))
    return KINDS[t]
  }

  gen(off: number): number {
    return this.mem.u32(off + RC_GEN)
  }

  /** False once the record at off was freed (or its memory reused, or rolled back): O1, O9. */
  isLive(off: number, gen: number): boolean {
    const m = this.mem
    if (typeof off !== 'number' || off <= 0 || off % 16 !== 0 || off + 16 > m.size || gen === 0) return false
    const t = m.u8(off)
    if (t < R_DICT || t > R_OBJECT || m.u32(off + RC_GEN) !== gen) return false
    if (m.u32(off + RC_CHECK) !== (gen ^ (off / 16) ^ CHECK_SALT) >>> 0) return false
    const next = m.u32(this.metaOff + OM_NEXT_GEN)
    return gen < next
  }

  /** Throws PERSIST_STALE unless isLive(off, gen). */
  assertLive(off: number, gen: number): void {
    if (!this.isLive(off, gen)) throw this.stale(off, gen)
  }

  private stale(off: number, gen: number): PersistError {
    return new PersistError(
      'PERSIST_STALE',
      `this object was removed from the store (it was at ${hex(off)} gen ${gen}); read it again from its parent`,
    )
  }

  className(off: number): string | undefined {
    if (this.mem.u8(off) !== R_OBJECT) return undefined
    const t = this.mem.u8(off + DC_CLASS)
    if (t !== T_SSTR && t !== T_SSTR16 && t !== T_STR)
      throw corrupt(`object ${hex(off)}: the class name slot has tag ${t}, not a string`)
    return this.readSlot(off + DC_CLASS) as string
  }

  private newGen(): number {
    const m = this.mem
    const meta = this.metaOff
    let g = m.u32(meta + OM_NEXT_GEN)
    if (g <= this.genHigh) g = this.genHigh + 1
    if (g >= 0xffffffff) g = 1
    this.genHigh = g
    this.ww(meta + OM_NEXT_GEN, 4)
    m.setU32(meta + OM_NEXT_GEN, g + 1)
    return g
  }

  private newRecord(type: number, size: number): number {
    const r = this.heap.alloc(size)
    const g = this.newGen()
    const m = this.mem
    this.ww(r, size)
    m.bytes(r, size).fill(0)
    m.setU8(r, type)
    m.setU32(r + RC_GEN, g)
    m.setU32(r + RC_CHECK, (g ^ (r / 16) ^ CHECK_SALT) >>> 0)
    this.addPending(r) // O3: refs start at 0
    return r
  }

  private newDict(sizeHint: number, className: string | undefined): number {
    const d = this.newRecord(className === undefined ? R_DICT : R_OBJECT, DICT_SIZE)
    if (className !== undefined) this.writeString(d + DC_CLASS, className)
    if (sizeHint > 0) this.dictResize(d, nextPow2(sizeHint))
    return d
  }

  private newList(n: number): number {
    const l = this.newRecord(R_LIST, LIST_SIZE)
    if (n > 0) this.listReserve(l, n, true)
    return l
  }

  private addPending(r: number): void {
    if (!this.pendingSet.has(r)) {
      this.pendingSet.add(r)
      this.pending.push(r)
    }
  }

  private incRef(r: number): void {
    const m = this.mem
    const c = m.u32(r + RC_REFS)
    if (c === 0xffffffff) throw corrupt(`reference count overflow at record ${hex(r)}`)
    this.ww(r + RC_REFS, 4)
    m.setU32(r + RC_REFS, c + 1)
  }

  private decRef(r: number, stack?: number[]): void {
    const m = this.mem
    const c = m.u32(r + RC_REFS)
    if (c === 0) throw corrupt(`reference count underflow at record ${hex(r)}`)
    this.ww(r + RC_REFS, 4)
    m.setU32(r + RC_REFS, c - 1)
    if (c === 1) {
      if (stack) stack.push(r)
      else this.addPending(r)
    }
  }

  /** O3: frees every pending record whose count is still 0, recursively. */
  private flushPending(): void {
    if (this.pending.length === 0) return
    const m = this.mem
    const stack: number[] = []
    for (const r of this.pending) {
      const t = m.u8(r)
      if (t >= R_DICT && t <= R_OBJECT && m.u32(r + RC_REFS) === 0) stack.push(r)
    }
    this.pending.length = 0
    this.pendingSet.clear()
    while (stack.length > 0) this.freeRecord(stack.pop()!, stack)
  }

  /** Releases everything a record owns, clears its header (O9) and frees it. */
  private freeRecord(r: number, stack: number[]): void {
    const m = this.mem
    const t = m.u8(r)
    if (t === R_LIST) {
      const len = m.u32(r + LS_LEN)
      const items = this.listItems(r)
      for (let i = 0; i < len; i++) this.releaseSlot(items + i * SLOT, stack)
      if (items !== 0) this.heap.free(items)
    } else if (t === R_DICT || t === R_OBJECT) {
      this.kc.delete(r)
      this.epoch++ // O12
      this.dictArrays(r)
      const used = m.u32(r + DC_USED)
      const ents = m.u64(r + DC_ENTRIES)
      for (let i = 0; i < used; i++) {
        const e = ents + i * ENTRY
        if (m.u8(e) === T_DELETED) continue
        this.releaseSlot(e, stack)
        this.releaseSlot(e + SLOT, stack)
      }
      if (ents !== 0) this.heap.free(ents)
      const idx = m.u64(r + DC_INDEX)
      if (idx !== 0) this.heap.free(idx)
      if (t === R_OBJECT) this.releaseSlot(r + DC_CLASS, stack)
    } else {
      throw corrupt(`freeing ${hex(r)}, which is not a record (type ${t})`)
    }
    this.ww(r, 16)
    m.setU32(r, 0)
    m.setU32(r + RC_GEN, 0)
    m.setU32(r + RC_CHECK, 0)
    this.heap.free(r)
  }

  // ---- value slots ---------------------------------------------------------------

  /** Releases what slot s owns (O4) or references (O3). Does not write the slot. */
  private releaseSlot(s: number, stack?: number[]): void {
    const m = this.mem
    const t = m.u8(s)
    if (t < T_STR) return
    if (t === T_REF) {
      this.decRef(this.recordAt(s), stack)
    } else if (t <= T_BIGREC) {
      const b = m.u64(s + 8)
      if (b !== 0) this.heap.free(b)
    }
  }

  /** Decodes a slot. Records come back through hooks.wrap. */
  private readSlot(s: number): unknown {
    const m = this.mem
    switch (m.u8(s)) {
      case T_INT:
        return m.i32(s + 12) * TWO32 + m.u32(s + 8)
      case T_FLOAT:
        return m.f64(s + 8)
      case T_UNDEF:
        return undefined
      case T_NULL:
        return null
      case T_FALSE:
        return false
      case T_TRUE:
        return true
      case T_SSTR: {
        const n = m.u8(s + 1)
        if (n > SSTR_MAX)
          throw corrupt(`short string in slot ${hex(s)} has length ${n} (at most ${SSTR_MAX})`)
        if (n === 0) return ''
        // ≤ 14 bytes: fromCharCode over a reused array is about twice as fast as a
        // Buffer latin1Slice at this size (measured 88 vs 204 ns per key)
        const codes = SHORT_CODES[n]
        for (let i = 0; i < n; i++) codes[i] = m.u8(s + 2 + i)
        return String.fromCharCode.apply(null, codes)
      }
      case T_SSTR16: {
        const n = m.u8(s + 1)
        if (n > SSTR16_MAX)
          throw corrupt(`short UTF-16 string in slot ${hex(s)} has length ${n} (at most ${SSTR16_MAX})`)
        return m.ucs2(s + 2, n * 2)
      }
      case T_STR: {
        const n = m.u32(s + 4)
        const enc = m.u8(s + 1)
        if (enc > ENC_UTF16 || (enc === ENC_UTF16 && n % 2 !== 0))
          throw corrupt(`string in slot ${hex(s)} has encoding ${enc} and ${n} bytes`)
        const p = this.blockAt(s, n)
        return enc === ENC_LATIN1 ? m.latin1(p, n) : m.ucs2(p, n)
      }
      case T_REF: {
        const r = this.recordAt(s)
        return this.hooks.wrap(r, KINDS[m.u8(r)])
      }
      case T_BIGINT:
        return (BigInt(m.i32(s + 12)) << 32n) + BigInt(m.u32(s + 8))
      case T_DATE:
        return new Date(m.f64(s + 8))
      case T_BYTES: {
        const n = m.u32(s + 4)
        const sub = m.u8(s + 1)
        if (sub >= BYTES_ELEMENT.length || n % BYTES_ELEMENT[sub] !== 0)
          throw corrupt(`bytes in slot ${hex(s)} have subtype ${sub} and ${n} bytes`)
        if (n === 0) return makeBytes(sub, new Uint8Array(0))
        const p = this.blockAt(s, n)
        const copy = new Uint8Array(n) // a fresh copy: mutating it does not write back
        copy.set(m.bytes(p, n))
        return makeBytes(sub, copy)
      }
      case T_BIGREC: {
        const n = m.u32(s + 4)
        const b = m.bytes(this.blockAt(s, n), n)
        let v = 0n
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i])
        return m.u8(s + 1) === 1 ? -v : v
      }
      default:
        throw corrupt(`invalid value tag ${m.u8(s)} at ${hex(s)}`)
    }
  }

  /**
   * Checks that v (and everything inside it that would be copied) can be stored,
   * before anything is written, so a TypeError leaves the store untouched. Iterative
   * (an explicit stack), so deeply nested values cannot overflow the JS stack; a path
   * string is built only for children that are objects.
   */
  private validate(v0: unknown, path0: string): void {
    const seen = new Set<object>()
    const stack: unknown[] = [v0, path0]
    while (stack.length > 0) {
      const path = stack.pop() as string
      const v = stack.pop()
      if (typeof v === 'function') throw new TypeError(`${path}: functions cannot be stored`)
      if (typeof v === 'symbol') throw new TypeError(`${path}: symbols cannot be stored`)
      if (v === null || typeof v !== 'object') continue
      if (this.hooks.unwrap(v) !== undefined || v instanceof Date || bytesSubtype(v) >= 0) continue
      if (seen.has(v)) continue
      seen.add(v)
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) if (needsCheck(v[i])) stack.push(v[i], `${path}[${i}]`)
        continue
      }
      let fields: [string, unknown][]
      if (isPlainProto(v)) {
        fields = Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]])
      } else {
        const name = this.hooks.classOf(v)
        if (typeof name !== 'string') throw new TypeError(`${path}: ${unsupported(v)}`)
        fields = [...this.fieldsOf(v)]
        for (const f of fields)
          if (typeof f[0] !== 'string') throw new TypeError(`${path}: field names must be strings`)
      }
      for (let i = fields.length - 1; i >= 0; i--)
        if (needsCheck(fields[i][1])) stack.push(fields[i][1], joinPath(path, fields[i][0]))
    }
  }

  private fieldsOf(v: object): Iterable<[string, unknown]> {
    if (this.hooks.fieldsOf) return this.hooks.fieldsOf(v)
    return Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]] as [string, unknown])
  }

  /** Validates a value about to be stored at base+key (paths built only for objects). */
  private prepare(v: unknown, base: string | undefined, key: string | number): void {
    const t = typeof v
    if (t === 'object' ? v !== null : t === 'function' || t === 'symbol')
      this.validate(v, joinPath(base, key))
  }

  /**
   * Stores v (already validated) into slot s, releasing what the slot held.
   * seen: objects already copied in this deep copy (sharing and cycles).
   */
  private writeValue(
    s: number,
    v: unknown,
    seen: Map<object, number> | null,
    jobs: (object | number)[] | null = null,
  ): void {
    const m = this.mem
    switch (typeof v) {
      case 'number': {
        this.ww(s, SLOT)
        if (m.u8(s) >= T_STR) this.releaseSlot(s)
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          m.setU32(s, T_INT)
          m.setU32(s + 4, 0)
          m.setU32(s + 8, v >>> 0)
          m.setI32(s + 12, Math.floor(v / TWO32))
        } else {
          m.setU32(s, T_FLOAT)
          m.setU32(s + 4, 0)
          m.setF64(s + 8, v)
        }
        return
      }
      case 'string':
        this.writeString(s, v)
        return
      case 'boolean':
        this.writeSimple(s, v ? T_TRUE : T_FALSE)
        return
      case 'undefined':
        this.writeSimple(s, T_UNDEF)
        return
      case 'bigint': {
        if (BigInt.asIntN(64, v) === v) {
          this.writeSimple(s, T_BIGINT)
          m.setU32(s + 8, Number(v & 0xffffffffn))
          m.setI32(s + 12, Number(BigInt.asIntN(32, v >> 32n)))
        } else {
          const neg = v < 0n
          let a = neg ? -v : v
          const bytes: number[] = []
          while (a > 0n) {
            bytes.push(Number(a & 0xffn))
            a >>= 8n
          }
          const b = this.heap.alloc(bytes.length)
          this.ww(b, bytes.length)
          m.bytes(b, bytes.length).set(bytes)
          this.writeSimple(s, T_BIGREC)
          m.setU8(s + 1, neg ? 1 : 0)
          m.setU32(s + 4, bytes.length)
          m.setU64(s + 8, b)
        }
        return
      }
      case 'object': {
        if (v === null) {
          this.writeSimple(s, T_NULL)
          return
        }
        const ref = this.hooks.unwrap(v)
        if (ref !== undefined) {
          this.storeRef(s, ref)
          return
        }
        if (v instanceof Date) {
          this.writeSimple(s, T_DATE)
          m.setF64(s + 8, v.getTime())
          return
        }
        const sub = bytesSubtype(v)
        if (sub >= 0) {
          this.writeBytes(s, v, sub)
          return
        }
        if (seen === null) seen = new Map()
        this.storeRef(s, jobs === null ? this.copyIn(v, seen) : this.startCopy(v, seen, jobs))
        return
      }
      default:
        throw new TypeError(`${typeof v} values cannot be stored`)
    }
  }

  /** Writes a tag whose payload is empty or written by the caller (willWrite done here). */
  private writeSimple(s: number, tag: number): void {
    const m = this.mem
    this.ww(s, SLOT)
    if (m.u8(s) >= T_STR) this.releaseSlot(s)
    m.setU32(s, tag)
    m.setU32(s + 4, 0)
    m.setF64(s + 8, 0)
  }

  private storeRef(s: number, r: number): void {
    const m = this.mem
    const t = m.u8(r)
    if (t < R_DICT || t > R_OBJECT) throw this.stale(r, m.u32(r + RC_GEN))
    this.incRef(r) // before releasing: s may already hold r
    this.writeSimple(s, T_REF)
    m.setU8(s + 1, t)
    m.setU64(s + 8, r)
  }

  private writeBytes(s: number, v: object, sub: number): void {
    const src =
      v instanceof ArrayBuffer
        ? new Uint8Array(v)
        : new Uint8Array(
            (v as ArrayBufferView).buffer,
            (v as ArrayBufferView).byteOffset,
            (v as ArrayBufferView).byteLength,
          )
    const n = src.length
    if (n > 0xffffffff) throw new PersistError('PERSIST_TOO_BIG', 'a byte value is limited to 4 GiB - 1')
    let b = 0
    if (n > 0) {
      b = this.heap.alloc(n)
      this.ww(b, n)
      this.mem.bytes(b, n).set(src)
    }
    const m = this.mem
    this.writeSimple(s, T_BYTES)
    m.setU8(s + 1, sub)
    m.setU32(s + 4, n)
    m.setU64(s + 8, b)
  }

  /** O4, O7: a string owned by slot s; rewritten in place when the old block fits. */
  private writeString(s: number, str: string): void {
    const m = this.mem
    const n = str.length
    let latin1 = true
    if (n <= 32) {
      for (let i = 0; i < n; i++)
        if (str.charCodeAt(i) > 255) {
          latin1 = false
          break
        }
    } else latin1 = !NOT_LATIN1.test(str)
    if (latin1 ? n <= SSTR_MAX : n <= SSTR16_MAX) {
      this.writeSimple(s, latin1 ? T_SSTR : T_SSTR16)
      m.setU8(s + 1, n)
      if (latin1) for (let i = 0; i < n; i++) m.setU8(s + 2 + i, str.charCodeAt(i))
      else for (let i = 0; i < n; i++) m.setU16(s + 2 + 2 * i, str.charCodeAt(i))
      return
    }
    const nbytes = latin1 ? n : 2 * n
    if (nbytes > 0xffffffff)
      throw new PersistError('PERSIST_TOO_BIG', 'a string is limited to 4 GiB - 1 bytes')
    this.ww(s, SLOT)
    let b = 0
    if (m.u8(s) === T_STR) {
      // Seed 002's case: replace in place when the old block is big enough (and not
      // wastefully big), so only the new string's bytes are written.
      const old = m.u64(s + 8)
      const oldLen = m.u32(s + 4)
      if (!this.inHeap(old, oldLen)) this.blockAt(s, oldLen) // O11: throws PERSIST_CORRUPT
      if (nbytes <= oldLen) {
        if (nbytes >= oldLen / 4 || oldLen <= 256) b = old // a big shrink gives the block back
      } else if (nbytes <= this.heap.usableSize(old)) b = old
    }
    if (b === 0) {
      this.releaseSlot(s)
      b = this.heap.alloc(nbytes)
    }
    this.ww(b, nbytes)
    if (latin1) m.writeLatin1(b, str)
    else m.writeUcs2(b, str)
    m.setU32(s, T_STR | ((latin1 ? ENC_LATIN1 : ENC_UTF16) << 8))
    m.setU32(s + 4, nbytes)
    m.setU64(s + 8, b)
  }

  /**
   * Deep copy of a plain value into new records (refs 0, pending); returns the
   * record. Iterative: a record is created when first met (so sharing and cycles
   * resolve through `seen`) and filled later from the `jobs` stack.
   */
  private copyIn(v: object, seen: Map<object, number>): number {
    const jobs: (object | number)[] = []
    const r = this.startCopy(v, seen, jobs)
    while (jobs.length > 0) {
      const rec = jobs.pop() as number
      const src = jobs.pop() as object
      this.fillCopy(src, rec, seen, jobs)
    }
    return r
  }

  private startCopy(v: object, seen: Map<object, number>, jobs: (object | number)[]): number {
    const got = seen.get(v)
    if (got !== undefined) return got
    const ref = this.hooks.unwrap(v)
    if (ref !== undefined) return ref
    let r: number
    if (Array.isArray(v)) {
      r = this.newList(v.length)
      this.ww(r + LS_LEN, 4)
      this.mem.setU32(r + LS_LEN, v.length) // O6: the slots are zero (undefined) until filled
    } else if (isPlainProto(v)) {
      r = this.newDict(Object.keys(v).length, undefined)
    } else {
      const name = this.hooks.classOf(v)
      if (typeof name !== 'string') throw new TypeError(`value: ${unsupported(v)}`)
      r = this.newDict(0, name)
    }
    seen.set(v, r)
    jobs.push(v, r)
    return r
  }

  private fillCopy(v: object, r: number, seen: Map<object, number>, jobs: (object | number)[]): void {
    if (Array.isArray(v)) {
      const items = this.mem.u64(r + LS_ITEMS)
      for (let i = 0; i < v.length; i++) this.writeValue(items + i * SLOT, v[i], seen, jobs)
      return
    }
    const fields: Iterable<[string, unknown]> = isPlainProto(v)
      ? Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]] as [string, unknown])
      : this.fieldsOf(v)
    for (const [k, fv] of fields) {
      const h = hash32(k)
      let e = this.findEntry(r, k, h)
      if (e === 0) e = this.dictInsert(r, k, h)
      this.writeValue(e + SLOT, fv, seen, jobs)
    }
  }

  // ---- dicts ---------------------------------------------------------------------

  private assertDict(d: number): void {
    const t = this.mem.u8(d)
    if (t !== R_DICT && t !== R_OBJECT) this.notA(d, 'dict')
  }

  private notA(off: number, what: string): never {
    if (typeof off !== 'number' || !Number.isInteger(off))
      throw new TypeError(`expected a record offset (a number), got ${typeof off}`)
    const t = this.mem.u8(off)
    if (t === 0) throw this.stale(off, this.mem.u32(off + RC_GEN))
    throw new PersistError(
      'PERSIST_INVALID',
      `the record at ${hex(off)} is a ${KINDS[t] ?? `#${t}`}, not a ${what}`,
    )
  }

  /** O5: compares a key slot with a JS string without decoding the stored key. */
  private keyEquals(e: number, key: string): boolean {
    const m = this.mem
    const t = m.u8(e)
    const n = key.length
    if (t === T_SSTR) {
      if (m.u8(e + 1) !== n || n > SSTR_MAX) return false // O7, O11: never read past the slot
      for (let i = 0; i < n; i++) if (m.u8(e + 2 + i) !== key.charCodeAt(i)) return false
      return true
    }
    if (t === T_SSTR16) {
      if (m.u8(e + 1) !== n || n > SSTR16_MAX) return false
      for (let i = 0; i < n; i++) if (m.u16(e + 2 + 2 * i) !== key.charCodeAt(i)) return false
      return true
    }
    if (t === T_STR) {
      const bl = m.u32(e + 4)
      if (bl !== n && bl !== 2 * n) return false
      const p = this.blockAt(e, bl)
      if (m.u8(e + 1) === ENC_LATIN1) {
        if (bl !== n) return false
        for (let i = 0; i < n; i++) if (m.u8(p + i) !== key.charCodeAt(i)) return false
      } else {
        if (bl !== 2 * n) return false
        for (let i = 0; i < n; i++) if (m.u16(p + 2 * i) !== key.charCodeAt(i)) return false
      }
      return true
    }
    return false
  }

  /** The key hash of a stored key slot, computed from the file bytes. */
  private slotHash(e: number): number {
    const m = this.mem
    const t = m.u8(e)
    let h = 0x811c9dc5
    if (t === T_SSTR || t === T_SSTR16) {
      const n = m.u8(e + 1)
      if (n > (t === T_SSTR ? SSTR_MAX : SSTR16_MAX)) throw corrupt(`dict key slot ${hex(e)} has length ${n}`)
      for (let i = 0; i < n; i++) {
        h ^= t === T_SSTR ? m.u8(e + 2 + i) : m.u16(e + 2 + 2 * i)
        h = Math.imul(h, 16777619)
      }
    } else if (t === T_STR) {
      const bl = m.u32(e + 4)
      const p = this.blockAt(e, bl)
      if (m.u8(e + 1) === ENC_LATIN1) {
        for (let i = 0; i < bl; i++) {
          h ^= m.u8(p + i)
          h = Math.imul(h, 16777619)
        }
      } else {
        for (let i = 0; i < bl; i += 2) {
          h ^= m.u16(p + i)
          h = Math.imul(h, 16777619)
        }
      }
    } else throw corrupt(`dict key at ${hex(e)} has tag ${t}, not a string`)
    return h
  }

  /** Bucket offset holding key (0 = absent). */
  private findBucket(d: number, key: string, h: number): number {
    const m = this.mem
    this.dictArrays(d) // O11: everything below stays inside the two arrays
    const nb = m.u32(d + DC_NBUCKETS)
    if (nb === 0) return 0
    const idx = m.u64(d + DC_INDEX)
    const ents = m.u64(d + DC_ENTRIES)
    const used = m.u32(d + DC_USED)
    const mask = nb - 1
    let i = h & mask
    for (let probes = 0; probes < nb; probes++) {
      const b = idx + i * BUCKET
      const r = m.u32(b)
      if (r === 0) return 0
      if (r !== DUMMY && m.i32(b + 4) === h) {
        if (r > used) throw corrupt(`dict ${hex(d)}: index bucket ${hex(b)} names entry ${r - 1} of ${used}`)
        if (this.keyEquals(ents + (r - 1) * ENTRY, key)) return b
      }
      i = (i + 1) & mask
    }
    return 0
  }

  /** Entry offset holding key (0 = absent); through the key cache (O10). */
  private findEntry(d: number, key: string, h: number): number {
    let c = this.kc.get(d)
    if (c !== undefined) {
      const e = c.get(key)
      if (e !== undefined) return e
    }
    const b = this.findBucket(d, key, h)
    if (b === 0) return 0
    const e = this.mem.u64(d + DC_ENTRIES) + (this.mem.u32(b) - 1) * ENTRY
    if (c === undefined) {
      c = new Map()
      this.kc.set(d, c)
    }
    if (++this.kcSize > 100_000) {
      // bound the cache's memory; no entry moved, so the O12 epoch stays
      this.kc.clear()
      this.kcSize = 0
    } else c.set(key, e)
    return e
  }

  /** Entry offset for key, hashing only when the cache misses. */
  private lookup(d: number, key: string): number {
    const mm = this.memo
    if (mm !== null && mm.d === d && mm.epoch === this.epoch) {
      // O12: the calls after a listing ask for its keys in order (or the same key twice:
      // a descriptor then a get)
      const p = mm.pos
      if (p < mm.keys.length && mm.keys[p] === key) {
        mm.pos = p + 1
        return mm.ents[p]
      }
      if (p > 0 && mm.keys[p - 1] === key) return mm.ents[p - 1]
      if (mm.keys.length > 0 && mm.keys[0] === key) {
        // a second pass over the same listing (for…in: V8 filters every key first,
        // then asks `has` and `get` for each key as the loop runs)
        mm.pos = 1
        return mm.ents[0]
      }
    }
    const c = this.kc.get(d)
    if (c !== undefined) {
      const e = c.get(key)
      if (e !== undefined) return e
    }
    return this.findEntry(d, key, hash32(key))
  }

  /** Appends an entry for a key known to be absent; its value slot is undefined. */
  private dictInsert(d: number, key: string, h: number): number {
    const m = this.mem
    this.dictArrays(d)
    if (m.u32(d + DC_USED) >= m.u32(d + DC_CAP)) {
      const count = m.u32(d + DC_COUNT)
      this.dictResize(d, nextPow2(count + 1 + (count >> 1)))
    }
    const used = m.u32(d + DC_USED)
    const e = m.u64(d + DC_ENTRIES) + used * ENTRY
    this.ww(e, ENTRY)
    m.bytes(e, ENTRY).fill(0)
    this.writeString(e, key)
    this.bucketInsert(d, used + 1, h)
    this.ww(d + DC_COUNT, 8)
    m.setU32(d + DC_COUNT, m.u32(d + DC_COUNT) + 1)
    m.setU32(d + DC_USED, used + 1)
    return e
  }

  private bucketInsert(d: number, ref: number, h: number, journaled = false): void {
    const m = this.mem
    const nb = m.u32(d + DC_NBUCKETS)
    const mask = nb - 1
    const idx = m.u64(d + DC_INDEX)
    let i = h & mask
    for (let probes = 0; ; probes++) {
      // O5 keeps a free bucket; a damaged index may not (O11: no endless probe)
      if (probes >= nb) throw corrupt(`dict ${hex(d)}: the index at ${hex(idx)} has no free bucket`)
      const r = m.u32(idx + i * BUCKET)
      if (r === 0 || r === DUMMY) break
      i = (i + 1) & mask
    }
    const b = idx + i * BUCKET
    if (!journaled) this.ww(b, BUCKET)
    m.setU32(b, ref)
    m.setI32(b + 4, h)
  }

  /** O5: new entry and index arrays of capacity cap; live entries keep their order. */
  private dictResize(d: number, cap: number): void {
    this.kc.delete(d)
    this.epoch++ // O12
    const m = this.mem
    const oldEnts = m.u64(d + DC_ENTRIES)
    const oldIdx = m.u64(d + DC_INDEX)
    const used = m.u32(d + DC_USED)
    const ents = this.heap.alloc(cap * ENTRY)
    const idx = this.heap.alloc(cap * 2 * BUCKET)
    this.ww(ents, cap * ENTRY)
    this.ww(idx, cap * 2 * BUCKET)
    m.bytes(idx, cap * 2 * BUCKET).fill(0)
    this.ww(d + DC_COUNT, 32)
    m.setU32(d + DC_NBUCKETS, cap * 2)
    m.setU64(d + DC_INDEX, idx)
    let j = 0
    if (oldEnts !== 0) {
      for (let i = 0; i < used; i++) {
        const e = oldEnts + i * ENTRY
        if (m.u8(e) === T_DELETED) continue
        m.bytes(ents + j * ENTRY, ENTRY).set(m.bytes(e, ENTRY))
        j++
        this.bucketInsert(d, j, this.slotHash(e), true)
      }
    }
    m.bytes(ents + j * ENTRY, (cap - j) * ENTRY).fill(0)
    m.setU32(d + DC_COUNT, j)
    m.setU32(d + DC_USED, j)
    m.setU32(d + DC_CAP, cap)
    m.setU64(d + DC_ENTRIES, ents)
    if (oldEnts !== 0) this.heap.free(oldEnts)
    if (oldIdx !== 0) this.heap.free(oldIdx)
  }

  /** The value stored under key, or undefined when missing. */
  dictGet(d: number, key: string): unknown {
    this.assertDict(d)
    if (typeof key !== 'string') throw new TypeError(`dict keys are strings, got ${typeof key}`)
    const e = this.lookup(d, key)
    return e === 0 ? undefined : this.readSlot(e + SLOT)
  }

  /**
   * The value stored under key, or `absent` when the key is missing: one lookup where
   * `dictHas` + `dictGet` take two (a key may hold undefined).
   */
  dictGetOr<A>(d: number, key: string, absent: A): unknown {
    this.assertDict(d)
    if (typeof key !== 'string') throw new TypeError(`dict keys are strings, got ${typeof key}`)
    const e = this.lookup(d, key)
    return e === 0 ? absent : this.readSlot(e + SLOT)
  }

  dictHas(d: number, key: string): boolean {
    this.assertDict(d)
    if (typeof key !== 'string') throw new TypeError(`dict keys are strings, got ${typeof key}`)
    return this.lookup(d, key) !== 0
  }

  /** Stores v under key (path: the dict's own path, for error messages). */
  dictSet(d: number, key: string, v: unknown, path?: string): void {
    this.assertDict(d)
    if (typeof key !== 'string') throw new TypeError(`dict keys are strings, got ${typeof key}`)
    this.prepare(v, path, key)
    let e = this.lookup(d, key)
    if (e === 0) e = this.dictInsert(d, key, hash32(key))
    this.writeValue(e + SLOT, v, null)
  }

  dictDelete(d: number, key: string): boolean {
    this.assertDict(d)
    if (typeof key !== 'string') throw new TypeError(`dict keys are strings, got ${typeof key}`)
    const m = this.mem
    const b = this.findBucket(d, key, hash32(key))
    if (b === 0) return false
    this.kc.get(d)?.delete(key)
    this.epoch++ // O12
    const e = m.u64(d + DC_ENTRIES) + (m.u32(b) - 1) * ENTRY
    this.releaseSlot(e)
    this.releaseSlot(e + SLOT)
    this.ww(e, ENTRY)
    m.bytes(e, ENTRY).fill(0)
    m.setU8(e, T_DELETED)
    this.ww(b, 4)
    m.setU32(b, DUMMY)
    const count = m.u32(d + DC_COUNT) - 1
    this.ww(d + DC_COUNT, 4)
    m.setU32(d + DC_COUNT, count)
    const cap = m.u32(d + DC_CAP)
    if (count === 0) this.dictClearBlocks(d)
    else if (cap > 8 && count < cap / 8) this.dictResize(d, nextPow2(count * 2))
    return true
  }

  /** An emptied dict drops its arrays (and its tombstones). */
  private dictClearBlocks(d: number): void {
    this.kc.delete(d)
    this.epoch++ // O12
    const m = this.mem
    const ents = m.u64(d + DC_ENTRIES)
    const idx = m.u64(d + DC_INDEX)
    this.ww(d + DC_COUNT, 32)
    m.bytes(d + DC_COUNT, 32).fill(0)
    if (ents !== 0) this.heap.free(ents)
    if (idx !== 0) this.heap.free(idx)
  }

  /**
   * Keys in insertion order (a fresh array). Remembers the latest listing (O12) until
   * that dict's layout changes: listing the same unchanged dict again decodes nothing,
   * and lookups of its keys in listing order cost one string comparison each.
   */
  dictKeys(d: number): string[] {
    this.assertDict(d)
    const m = this.mem
    const used = m.u32(d + DC_USED)
    const mm = this.memo
    if (mm !== null && mm.d === d && mm.epoch === this.epoch && mm.used === used) {
      mm.pos = 0
      return mm.keys.slice()
    }
    this.dictArrays(d)
    const ents = m.u64(d + DC_ENTRIES)
    const keys: string[] = []
    const offs: number[] = []
    for (let i = 0; i < used; i++) {
      const e = ents + i * ENTRY
      if (m.u8(e) === T_DELETED) continue
      keys.push(this.readKey(e))
      offs.push(e)
    }
    this.memo = { d, epoch: this.epoch, used, keys, ents: offs, pos: 0 }
    return keys.slice()
  }

  /**
   * Yields [key, value] pairs in insertion order with O(1) memory (no listing).
   * Follows changes made while iterating: values updated in place are read fresh,
   * entries appended are visited, deleted ones are skipped; when the entry array was
   * rebuilt (resize, or a delete that compacted it) iteration resumes after the last
   * key yielded, and throws PERSIST_INVALID if that key itself was deleted. A record
   * freed meanwhile throws PERSIST_STALE. Values are read when their pair is yielded.
   */
  dictIterEntries(d: number): Generator<[string, unknown], void, undefined> {
    return this.dictIter(d, true) as Generator<[string, unknown], void, undefined>
  }

  /** Keys in insertion order with O(1) memory; same rules as dictIterEntries. */
  dictIterKeys(d: number): Generator<string, void, undefined> {
    return this.dictIter(d, false) as Generator<string, void, undefined>
  }

  /** The live entries of d in order (keys, or [key, value] pairs), re-validated at every step. */
  private *dictIter(d: number, pairs: boolean): Generator<string | [string, unknown], void, undefined> {
    this.assertDict(d)
    const m = this.mem
    const gen0 = m.u32(d + RC_GEN)
    this.dictArrays(d)
    let ents = m.u64(d + DC_ENTRIES)
    let last: string | undefined
    let i = 0
    for (;;) {
      const mem = this.mem // the mapping may have been replaced (growth) while suspended
      const t = mem.u8(d)
      if ((t !== R_DICT && t !== R_OBJECT) || mem.u32(d + RC_GEN) !== gen0) throw this.stale(d, gen0)
      const now = mem.u64(d + DC_ENTRIES)
      if (now !== ents) {
        // the entry array was rebuilt or dropped: find where the last key went
        this.dictArrays(d)
        ents = now
        if (now === 0) return // emptied
        if (last !== undefined) {
          const b = this.findBucket(d, last, hash32(last))
          if (b === 0)
            throw new PersistError(
              'PERSIST_INVALID',
              `the dict at ${hex(d)} was changed while being iterated: the last key visited (${JSON.stringify(last)}) was deleted and the entries were compacted; iterate again`,
            )
          i = mem.u32(b) // entry index + 1: resume after it
        }
      }
      const used = mem.u32(d + DC_USED)
      if (used > mem.u32(d + DC_CAP)) this.dictArrays(d) // throws PERSIST_CORRUPT
      while (i < used && mem.u8(ents + i * ENTRY) === T_DELETED) i++
      if (i >= used) return
      const e = ents + i * ENTRY
      i++
      last = this.readKey(e)
      yield pairs ? [last, this.readSlot(e + SLOT)] : last
    }
  }

  /** [key, value] pairs in insertion order (an array; dictIterEntries streams them). */
  dictEntries(d: number): [string, unknown][] {
    this.assertDict(d)
    this.dictArrays(d)
    const m = this.mem
    const used = m.u32(d + DC_USED)
    const ents = m.u64(d + DC_ENTRIES)
    const out: [string, unknown][] = []
    for (let i = 0; i < used; i++) {
      const e = ents + i * ENTRY
      if (m.u8(e) !== T_DELETED) out.push([this.readKey(e), this.readSlot(e + SLOT)])
    }
    return out
  }

  dictSize(d: number): number {
    this.assertDict(d)
    return this.mem.u32(d + DC_COUNT)
  }

  /** Creates an empty, unattached dict (freed at commit unless referenced): for tests and tools. */
  newDictRecord(className?: string): number {
    return this.newDict(0, className)
  }

  /** Creates an empty, unattached list (freed at commit unless referenced). */
  newListRecord(): number {
    return this.newList(0)
  }

  // ---- lists ---------------------------------------------------------------------

  private assertList(l: number): void {
    if (this.mem.u8(l) !== R_LIST) this.notA(l, 'list')
  }

  listLength(l: number): number {
    this.assertList(l)
    return this.mem.u32(l + LS_LEN)
  }

  /** The item at i, or undefined past the end. */
  listGet(l: number, i: number): unknown {
    this.assertList(l)
    const m = this.mem
    if (!(i >= 0 && i < m.u32(l + LS_LEN))) {
      if (typeof i !== 'number') throw new TypeError(`list index must be a number, got ${typeof i}`)
      return undefined
    }
    if (!Number.isInteger(i)) return undefined
    const s = m.u64(l + LS_ITEMS) + i * SLOT
    if (s < MIN_BLOCK || s + SLOT > m.size) this.listItems(l) // O11: throws PERSIST_CORRUPT
    return this.readSlot(s)
  }

  /** Sets item i; i >= length extends the list, filling the gap with undefined. */
  listSet(l: number, i: number, v: unknown, path?: string): void {
    this.assertList(l)
    checkIndex(i, 'listSet')
    this.prepare(v, path, i)
    this.listItems(l)
    const m = this.mem
    if (i >= m.u32(l + LS_LEN)) this.setLength(l, i + 1)
    this.writeValue(m.u64(l + LS_ITEMS) + i * SLOT, v, null)
  }

  /** Appends values; returns the new length. Amortised O(1) per item. */
  listPush(l: number, ...vs: unknown[]): number {
    return this.listPushAll(l, vs)
  }

  listPushAll(l: number, vs: unknown[], path?: string): number {
    this.assertList(l)
    this.listItems(l)
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    for (let k = 0; k < vs.length; k++) this.prepare(vs[k], path, len + k)
    const n = len + vs.length
    if (n > 0xfffffffe) throw new RangeError('a list holds at most 2^32-2 items')
    this.listReserve(l, n, false)
    for (let k = 0; k < vs.length; k++) this.writeValue(m.u64(l + LS_ITEMS) + (len + k) * SLOT, vs[k], null)
    this.ww(l + LS_LEN, 4)
    m.setU32(l + LS_LEN, n)
    return n
  }

  listPop(l: number): unknown {
    this.assertList(l)
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    if (len === 0) return undefined
    const s = this.listItems(l) + (len - 1) * SLOT
    const v = this.readSlot(s)
    this.releaseSlot(s)
    this.ww(s, SLOT)
    m.setF64(s, 0)
    m.setF64(s + 8, 0)
    this.ww(l + LS_LEN, 4)
    m.setU32(l + LS_LEN, len - 1)
    this.listMaybeShrink(l)
    return v
  }

  /** Array.prototype.splice semantics (negative start counts from the end). */
  listSplice(l: number, start: number, deleteCount: number, items: unknown[] = [], path?: string): unknown[] {
    this.assertList(l)
    if (!Array.isArray(items)) throw new TypeError('listSplice: items must be an array')
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    const rel = Math.trunc(Number(start)) || 0
    const st = rel < 0 ? Math.max(len + rel, 0) : Math.min(rel, len)
    const dc = Math.min(Math.max(Math.trunc(Number(deleteCount)) || 0, 0), len - st)
    const ins = items.length
    for (let k = 0; k < ins; k++) this.prepare(items[k], path, st + k)
    const newLen = len - dc + ins
    if (newLen > 0xfffffffe) throw new RangeError('a list holds at most 2^32-2 items')
    const removed = new Array(dc)
    let base = this.listItems(l)
    for (let k = 0; k < dc; k++) {
      const s = base + (st + k) * SLOT
      removed[k] = this.readSlot(s)
      this.releaseSlot(s)
    }
    if (newLen > len) this.listReserve(l, newLen, false)
    base = m.u64(l + LS_ITEMS)
    const tail = len - st - dc
    if (tail > 0 && ins !== dc) this.moveSlots(base, st + dc, st + ins, tail)
    // O6 and O4: the gap [st, st+ins) and a shrunk tail hold stale copies: zero them.
    this.zeroSlots(base, st, st + ins)
    if (newLen < len) this.zeroSlots(base, newLen, len)
    for (let k = 0; k < ins; k++) this.writeValue(m.u64(l + LS_ITEMS) + (st + k) * SLOT, items[k], null)
    this.ww(l + LS_LEN, 4)
    m.setU32(l + LS_LEN, newLen)
    if (newLen < len) this.listMaybeShrink(l)
    return removed
  }

  private moveSlots(base: number, from: number, to: number, n: number): void {
    const lo = Math.min(from, to)
    const span = (Math.max(from, to) - lo + n) * SLOT
    this.ww(base + to * SLOT, n * SLOT)
    const v = this.mem.bytes(base + lo * SLOT, span)
    v.copyWithin((to - lo) * SLOT, (from - lo) * SLOT, (from - lo + n) * SLOT)
  }

  private zeroSlots(base: number, from: number, to: number): void {
    if (to <= from) return
    this.ww(base + from * SLOT, (to - from) * SLOT)
    this.mem.bytes(base + from * SLOT, (to - from) * SLOT).fill(0)
  }

  /** Truncates (releasing items) or extends with undefined. */
  listSetLength(l: number, n: number): void {
    this.assertList(l)
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xfffffffe)
      throw new RangeError(`listSetLength: invalid length ${String(n)}`)
    this.listItems(l)
    this.setLength(l, n)
  }

  private setLength(l: number, n: number): void {
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    if (n === len) return
    if (n < len) {
      const base = m.u64(l + LS_ITEMS)
      for (let i = n; i < len; i++) this.releaseSlot(base + i * SLOT)
      this.zeroSlots(base, n, len)
    } else {
      this.listReserve(l, n, false) // O6: slots past the length are already zero
    }
    this.ww(l + LS_LEN, 4)
    m.setU32(l + LS_LEN, n)
    if (n < len) this.listMaybeShrink(l)
  }

  /** Ensures capacity >= need (exact when `exact`, else with headroom); new slots zero (O6). */
  private listReserve(l: number, need: number, exact: boolean): void {
    const m = this.mem
    const cap = m.u32(l + LS_CAP)
    if (need <= cap) return
    let newCap = exact ? need : Math.max(need, 4, cap < 4096 ? cap * 2 : cap + (cap >> 1))
    const old = m.u64(l + LS_ITEMS)
    let items: number
    for (;;) {
      try {
        items = old === 0 ? this.heap.alloc(newCap * SLOT) : this.heap.realloc(old, newCap * SLOT)
        break
      } catch (e) {
        if (e instanceof PersistError && e.code === 'PERSIST_TOO_BIG' && newCap > need) newCap = need
        else throw e
      }
    }
    this.zeroSlotsRaw(items, cap, newCap)
    this.ww(l + LS_CAP, 12)
    m.setU32(l + LS_CAP, newCap)
    m.setU64(l + LS_ITEMS, items)
  }

  private zeroSlotsRaw(base: number, from: number, to: number): void {
    this.ww(base + from * SLOT, (to - from) * SLOT)
    this.mem.bytes(base + from * SLOT, (to - from) * SLOT).fill(0)
  }

  /** Gives memory back when a list shrank below a quarter of its capacity. */
  private listMaybeShrink(l: number): void {
    const m = this.mem
    const cap = m.u32(l + LS_CAP)
    const len = m.u32(l + LS_LEN)
    if (cap <= 16 || len >= cap / 4) return
    const items = m.u64(l + LS_ITEMS)
    if (len === 0) {
      this.heap.free(items)
      this.ww(l + LS_CAP, 12)
      m.setU32(l + LS_CAP, 0)
      m.setU64(l + LS_ITEMS, 0)
      return
    }
    const newCap = Math.max(8, len * 2)
    const ni = this.heap.realloc(items, newCap * SLOT)
    this.ww(l + LS_CAP, 12)
    m.setU32(l + LS_CAP, newCap)
    m.setU64(l + LS_ITEMS, ni)
  }

  /**
   * Sorts in place with Array.prototype.sort's semantics: stable, undefined last
   * (never passed to compare), default order = String() of the values by UTF-16 code
   * units. Values move as raw slots: no string is re-encoded, no count changes.
   */
  listSort(l: number, compare?: (a: unknown, b: unknown) => number): void {
    this.assertList(l)
    if (compare !== undefined && typeof compare !== 'function')
      throw new TypeError('listSort: the comparator must be a function or undefined')
    const m = this.mem
    const len = m.u32(l + LS_LEN)
    if (len < 2) return
    let base = this.listItems(l)
    const vals = new Array(len)
    const order: number[] = []
    const undef: number[] = []
    for (let i = 0; i < len; i++) {
      if (m.u8(base + i * SLOT) === T_UNDEF) undef.push(i)
      else {
        vals[i] = this.readSlot(base + i * SLOT)
        order.push(i)
      }
    }
    if (compare === undefined) {
      const strs = new Array<string>(len)
      for (const i of order) strs[i] = String(vals[i])
      order.sort((a, b) => (strs[a] < strs[b] ? -1 : strs[a] > strs[b] ? 1 : 0))
    } else {
      order.sort((a, b) => compare(vals[a], vals[b]))
    }
    if (m.u32(l + LS_LEN) !== len) throw new TypeError('listSort: the list was modified by the comparator')
    for (const i of undef) order.push(i)
    base = this.listItems(l)
    this.permute(base, order)
  }

  listReverse(l: number): void {
    this.assertList(l)
    const len = this.mem.u32(l + LS_LEN)
    if (len < 2) return
    const base = this.listItems(l)
    const order = new Array<number>(len)
    for (let i = 0; i < len; i++) order[i] = len - 1 - i
    this.permute(base, order)
  }

  /** Slot k := old slot order[k] (ownership moves with the bytes). */
  private permute(base: number, order: number[]): void {
    const n = order.length
    let identity = true
    for (let k = 0; k < n; k++)
      if (order[k] !== k) {
        identity = false
        break
      }
    if (identity) return
    this.ww(base, n * SLOT)
    const view = this.mem.bytes(base, n * SLOT)
    const snap = new Uint8Array(n * SLOT)
    snap.set(view)
    for (let k = 0; k < n; k++) view.set(snap.subarray(order[k] * SLOT, order[k] * SLOT + SLOT), k * SLOT)
  }

  // ---- snapshots -----------------------------------------------------------------

  /** A plain deep snapshot: shared records → shared JS objects, cycles kept. */
  toJS(v: unknown): unknown {
    if (v !== null && typeof v === 'object') {
      const off = this.hooks.unwrap(v)
      if (off !== undefined) return this.toJSRecord(off)
    }
    return v
  }

  toJSRecord(off: number): unknown {
    const t = this.mem.u8(off)
    if (t < R_DICT || t > R_OBJECT) this.notA(off, 'record')
    return this.snap(off, new Map())
  }

  /** Iterative deep snapshot: containers are created when first met, filled from a stack. */
  private snap(off0: number, memo: Map<number, unknown>): unknown {
    const m = this.mem
    const jobs: number[] = []
    const make = (off: number): unknown => {
      const had = memo.get(off)
      if (had !== undefined) return had
      const t = m.u8(off)
      let c: unknown
      if (t === R_LIST) c = new Array(this.listItems(off) === 0 ? 0 : m.u32(off + LS_LEN))
      else if (t === R_DICT || t === R_OBJECT) c = {}
      else throw corrupt(`invalid record type ${t} at ${hex(off)}`)
      memo.set(off, c)
      jobs.push(off)
      return c
    }
    const value = (s: number): unknown => (m.u8(s) === T_REF ? make(this.recordAt(s)) : this.readSlot(s))
    const root = make(off0)
    while (jobs.length > 0) {
      const off = jobs.pop()!
      const c = memo.get(off)
      if (m.u8(off) === R_LIST) {
        const arr = c as unknown[]
        const base = this.listItems(off)
        for (let i = 0; i < arr.length; i++) arr[i] = value(base + i * SLOT)
        continue
      }
      const obj = c as Record<string, unknown>
      this.dictArrays(off)
      const used = m.u32(off + DC_USED)
      const ents = m.u64(off + DC_ENTRIES)
      for (let i = 0; i < used; i++) {
        const e = ents + i * ENTRY
        if (m.u8(e) === T_DELETED) continue
        const k = this.readKey(e)
        const v = value(e + SLOT)
        if (k === '__proto__')
          Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true })
        else obj[k] = v
      }
    }
    return root
  }

  // ---- maintenance ---------------------------------------------------------------

  /**
   * Marks from the root (and the pending set) and returns what the graph owns. With
   * `problems`, every offset is validated against `live` (the heap's live blocks)
   * before it is read, and each violation of O1–O7 is reported instead of thrown.
   */
  private walk(problems: string[] | null, live: Set<number> | null, garbage = false): Walk {
    const m = this.mem
    const w: Walk = {
      reach: new Set(),
      live: 0,
      garbage: new Set(),
      counts: new Map(),
      records: [],
      strings: 0,
      bytes: 0,
      bigints: 0,
    }
    let phase2 = false
    const report = (msg: string) => {
      if (problems === null) throw corrupt(msg)
      if (problems.length < 1000) problems.push(msg)
    }
    const own = (b: number, what: string): boolean => {
      if (live !== null && !live.has(b)) {
        report(`${what}: dangling offset ${hex(b)} (not a live heap block)`)
        return false
      }
      if (w.reach.has(b)) {
        report(`${what}: block ${hex(b)} is owned twice (O4)`)
        return false
      }
      w.reach.add(b)
      if (phase2) w.garbage.add(b)
      return true
    }
    const stack: number[] = []
    const visitRecord = (r: number, from: string) => {
      const c = w.counts.get(r)
      if (c !== undefined) {
        w.counts.set(r, c + 1)
        return
      }
      if (live !== null && !live.has(r)) {
        report(`${from}: dangling record offset ${hex(r)}`)
        return
      }
      if (!this.isRecordAt(r)) {
        const head = this.inHeap(r, 16)
          ? ` (type ${m.u8(r)}, gen ${m.u32(r + RC_GEN)})`
          : ' (outside the heap)'
        report(`${from}: ${hex(r)} is not a valid record${head} (O1)`)
        return
      }
      const g = m.u32(r + RC_GEN)
      if (problems !== null && g >= m.u32(this.metaOff + OM_NEXT_GEN))
        report(`${from}: record ${hex(r)} has generation ${g}, not below om_next_gen (O9)`)
      w.counts.set(r, 1)
      w.reach.add(r)
      if (phase2) w.garbage.add(r)
      w.records.push(r)
      stack.push(r)
    }
    const visitSlot = (s: number, where: string, isKey: boolean) => {
      const t = m.u8(s)
      if (isKey ? t !== T_SSTR && t !== T_SSTR16 && t !== T_STR : t > T_MAX) {
        report(`${where}: invalid ${isKey ? 'key' : 'value'} tag ${t}`)
        return
      }
      if ((t === T_SSTR && m.u8(s + 1) > SSTR_MAX) || (t === T_SSTR16 && m.u8(s + 1) > SSTR16_MAX)) {
        report(`${where}: short string length ${m.u8(s + 1)} (O7)`)
        return
      }
      if (t === T_STR && m.u8(s + 1) > ENC_UTF16) {
        report(`${where}: string encoding ${m.u8(s + 1)}`)
        return
      }
      if (t === T_REF) {
        const r = m.u64(s + 8)
        const before = w.counts.get(r)
        visitRecord(r, where)
        if (before === undefined && w.counts.get(r) === 1 && m.u8(s + 1) !== m.u8(r))
          report(`${where}: slot says record type ${m.u8(s + 1)}, record has ${m.u8(r)}`)
      } else if (t === T_STR || t === T_BYTES || t === T_BIGREC) {
        const b = m.u64(s + 8)
        const n = m.u32(s + 4)
        if (!phase2) {
          // live statistics only (garbage is counted in w.garbage)
          if (t === T_STR) w.strings++
          else if (t === T_BYTES) w.bytes++
          else w.bigints++
        }
        if (b === 0) {
          if (n !== 0 || t !== T_BYTES) report(`${where}: ${n}-byte value with no block`)
          return
        }
        if (own(b, where) && problems !== null && this.heap.usableSize(b) < n)
          report(`${where}: ${n} bytes stored in a block of ${this.heap.usableSize(b)}`)
      }
    }
    const visitDict = (d: number) => {
      const name = hex(d)
      const count = m.u32(d + DC_COUNT)
      const used = m.u32(d + DC_USED)
      const cap = m.u32(d + DC_CAP)
      const nb = m.u32(d + DC_NBUCKETS)
      const ents = m.u64(d + DC_ENTRIES)
      const idx = m.u64(d + DC_INDEX)
      if (m.u8(d) === R_OBJECT) {
        const ct = m.u8(d + DC_CLASS)
        if (ct !== T_SSTR && ct !== T_SSTR16 && ct !== T_STR)
          report(`object ${name}: class name is not a string`)
        else visitSlot(d + DC_CLASS, `object ${name} class`, true)
      }
      if (cap === 0) {
        if (count || used || nb || ents || idx) report(`dict ${name}: no capacity but non-zero fields (O5)`)
        return
      }
      if (!(count <= used && used <= cap && nb === 2 * cap && (cap & (cap - 1)) === 0)) {
        report(`dict ${name}: count ${count}, used ${used}, cap ${cap}, buckets ${nb} break O5`)
        return
      }
      if (!own(ents, `dict ${name} entries`) || !own(idx, `dict ${name} index`)) return
      if (live === null) this.dictArrays(d) // O11 (with `live`, own() and usableSize check them)
      if (problems !== null) {
        if (this.heap.usableSize(ents) < cap * ENTRY || this.heap.usableSize(idx) < nb * BUCKET) {
          report(`dict ${name}: arrays smaller than capacity ${cap}`)
          return
        }
      }
      let liveCount = 0
      for (let i = 0; i < used; i++) {
        const e = ents + i * ENTRY
        if (m.u8(e) === T_DELETED) {
          if (problems !== null && m.u8(e + SLOT) !== T_UNDEF)
            report(`dict ${name}: tombstone ${i} holds a value`)
          continue
        }
        liveCount++
        visitSlot(e, `dict ${name} key ${i}`, true)
        visitSlot(e + SLOT, `dict ${name} entry ${i}`, false)
        if (problems !== null) {
          const key = this.readSlot(e) as string
          const b = this.findBucket(d, key, hash32(key))
          if (b === 0 || m.u32(b) !== i + 1)
            report(`dict ${name}: key ${JSON.stringify(key)} not found through the index (O5)`)
        }
      }
      if (liveCount !== count) report(`dict ${name}: ${liveCount} live entries, header says ${count} (O5)`)
      if (problems !== null) {
        let refs = 0
        for (let i = 0; i < nb; i++) {
          const r = m.u32(idx + i * BUCKET)
          if (r !== 0 && r !== DUMMY) {
            refs++
            if (r > used) report(`dict ${name}: bucket ${i} points past the used entries`)
          }
        }
        if (refs !== count) report(`dict ${name}: index holds ${refs} entries, header says ${count} (O5)`)
      }
    }
    const visitList = (l: number) => {
      const name = hex(l)
      const len = m.u32(l + LS_LEN)
      const cap = m.u32(l + LS_CAP)
      const items = m.u64(l + LS_ITEMS)
      if (len > cap || (cap === 0) !== (items === 0)) {
        report(`list ${name}: length ${len}, capacity ${cap}, items ${hex(items)} break O6`)
        return
      }
      if (cap === 0) return
      if (!own(items, `list ${name} items`)) return
      if (live === null) this.listItems(l) // O11 (with `live`, own() and usableSize check them)
      if (problems !== null && this.heap.usableSize(items) < cap * SLOT) {
        report(`list ${name}: items block smaller than capacity ${cap}`)
        return
      }
      for (let i = 0; i < len; i++) visitSlot(items + i * SLOT, `list ${name}[${i}]`, false)
      if (problems !== null) {
        const rest = m.bytes(items + len * SLOT, (cap - len) * SLOT)
        for (let i = 0; i < rest.length; i++)
          if (rest[i] !== 0) {
            report(`list ${name}: slot ${len + Math.floor(i / SLOT)} past the length is not zero (O6)`)
            break
          }
      }
    }
    const drain = () => {
      while (stack.length > 0) {
        const r = stack.pop()!
        try {
          if (m.u8(r) === R_LIST) visitList(r)
          else visitDict(r)
        } catch (e) {
          if (problems === null) throw e
          report(`record ${hex(r)}: ${(e as Error).message}`)
        }
      }
    }
    w.reach.add(this.metaOff)
    visitRecord(this.rootOff, 'root')
    for (const r of this.pending) {
      if (w.counts.has(r)) continue
      visitRecord(r, 'pending')
      if (w.counts.has(r)) w.counts.set(r, 0)
    }
    drain()
    w.live = w.records.length
    if (garbage) {
      // Phase 2 (O3): records no live record refers to — cycles that deferred reference
      // counting leaves for gc(). Walking them too makes every count "references from
      // live AND garbage records", which is what rc_refs holds until gc() runs.
      phase2 = true
      const keep = this.keptBlocks()
      const candidates: number[] = []
      for (const b of live ?? this.heap.blocks())
        if (!w.reach.has(b) && !keep.has(b) && this.isRecordAt(b)) candidates.push(b)
      for (const r of candidates) {
        if (w.counts.has(r)) continue
        visitRecord(r, 'unreachable')
        if (w.counts.has(r)) w.counts.set(r, 0)
      }
      drain()
    }
    // The root's count includes the meta block's reference; visitRecord counted the
    // first visit as 1, so every count is now "references found + 1 if reached from root".
    return w
  }

  /** Heap blocks named by heap roots 1..7: owned by another user of the heap, never garbage. */
  private keptBlocks(): Set<number> {
    const keep = new Set<number>()
    for (let i = 1; i < 8; i++) {
      const b = this.heap.root(i)
      if (b) keep.add(b)
    }
    return keep
  }

  /**
   * Frees everything not reachable from the root or the pending set (cycles), and
   * fixes the counts of live records that garbage pointed at. Needs a transaction.
   * Assumes every heap block belongs to this layer except heap roots 1..7.
   */
  gc(): { freedObjects: number; freedBytes: number } {
    if (!this.pager.inTransaction)
      throw new PersistError('PERSIST_TXN', 'gc() needs a transaction: call begin() first')
    this.dropCaches()
    const m = this.mem
    const w = this.walk(null, null)
    for (const r of w.records) {
      const expected = w.counts.get(r)! // see the note at the end of walk()
      if (m.u32(r + RC_REFS) !== expected) {
        this.ww(r + RC_REFS, 4)
        m.setU32(r + RC_REFS, expected)
      }
    }
    const keep = this.keptBlocks()
    let freedObjects = 0
    let freedBytes = 0
    for (const b of this.heap.blocks()) {
      if (w.reach.has(b) || keep.has(b)) continue
      const t = m.u8(b)
      const g = m.u32(b + RC_GEN)
      if (
        t >= R_DICT &&
        t <= R_OBJECT &&
        g !== 0 &&
        m.u32(b + RC_CHECK) === (g ^ (b / 16) ^ CHECK_SALT) >>> 0
      ) {
        freedObjects++
        this.ww(b, 16)
        m.setU32(b, 0)
        m.setU32(b + RC_GEN, 0)
        m.setU32(b + RC_CHECK, 0)
      }
      freedBytes += this.heap.usableSize(b)
      this.heap.free(b)
    }
    return { freedObjects, freedBytes }
  }

  /**
   * Heap + pager problems and graph problems (O1–O11): real damage only; never throws
   * on a damaged file. Unreachable cycles waiting for gc() are not problems (deferred
   * reference counting leaves them by design): audit().garbage and stats().garbage
   * count them.
   */
  check(): string[] {
    return this.audit().problems
  }

  /**
   * check()'s problems plus the garbage gc() would free now — records in unreachable
   * cycles and the blocks they own — in one walk. A garbage record whose count does
   * not match the references from other garbage, an unreachable record nothing refers
   * to, and a block no record owns are problems (leaks), not garbage.
   */
  audit(): { problems: string[]; garbage: { objects: number; blocks: number; bytes: number } } {
    const own = !this.pager.inTransaction
    if (own) this.begin()
    const garbage = { objects: 0, blocks: 0, bytes: 0 }
    try {
      const problems: string[] = []
      try {
        problems.push(...this.heap.check())
      } catch (e) {
        problems.push(`heap check failed: ${(e as Error).message}`)
      }
      try {
        const live = new Set<number>(this.heap.blocks())
        const w = this.walk(problems, live, true)
        const m = this.mem
        for (let i = 0; i < w.records.length; i++) {
          const r = w.records[i]
          const want = w.counts.get(r)!
          const got = m.u32(r + RC_REFS)
          if (i >= w.live && want === 0 && got === 0)
            problems.push(
              `record ${hex(r)} is not reachable from the root and nothing refers to it (leak; gc() frees it)`,
            )
          else if (got !== want)
            problems.push(
              `${i >= w.live ? 'unreachable ' : ''}record ${hex(r)}: reference count ${got}, found ${want} references (O2)`,
            )
        }
        garbage.objects = w.records.length - w.live
        garbage.blocks = w.garbage.size
        for (const b of w.garbage) garbage.bytes += this.heap.usableSize(b)
        const keep = this.keptBlocks()
        let leaks = 0
        for (const b of live) {
          if (!w.reach.has(b) && !keep.has(b)) {
            leaks++
            if (leaks <= 10)
              problems.push(`block ${hex(b)} is not reachable from the root (leak; gc() frees it)`)
          }
        }
        if (leaks > 10) problems.push(`${leaks - 10} more unreachable blocks`)
      } catch (e) {
        problems.push(`objects check failed: ${(e as Error).message}`)
      }
      return { problems, garbage }
    } finally {
      if (own) this.pager.abort()
    }
  }

  stats(): {
    objects: Record<string, number>
    liveBytes: number
    reachableBytes: number
    pending: number
    garbage: { objects: number; blocks: number; bytes: number }
    heap: unknown
  } {
    const own = !this.pager.inTransaction
    if (own) this.begin()
    try {
      const w = this.walk(null, null, true)
      const m = this.mem
      const objects: Record<string, number> = {
        dict: 0,
        list: 0,
        object: 0,
        string: w.strings,
        bytes: w.bytes,
        bigint: w.bigints,
      }
      for (let i = 0; i < w.live; i++) objects[KINDS[m.u8(w.records[i])]]++
      let reachableBytes = 0
      const garbage = { objects: w.records.length - w.live, blocks: w.garbage.size, bytes: 0 }
      for (const b of w.reach) {
        const n = this.heap.usableSize(b)
        if (w.garbage.has(b)) garbage.bytes += n
        else reachableBytes += n
      }
      const heap = this.heap.stats() as unknown as Record<string, unknown>
      const liveBytes = Number(heap.bytesLive ?? heap.liveBytes ?? heap.bytes_live ?? Number.NaN)
      return { objects, liveBytes, reachableBytes, pending: this.pending.length, garbage, heap }
    } finally {
      if (own) this.pager.abort()
    }
  }
}
