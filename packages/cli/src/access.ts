/**
 * The CLI's view of a store: the objects layer (@persist/objects) opened directly,
 * with hooks that turn records into light `RecordRef` markers instead of proxies.
 * Walking a store this way touches one entry at a time (no snapshot of a whole dict
 * or list is ever built), reads objects of any class without the class being
 * registered, and writes class objects back under their stored class name.
 *
 * Every read and write happens between begin() and commit()/abort() (the caller's
 * transaction); helpers here never open transactions themselves.
 */
import { Objects, type RecordKind } from '@persist/objects'
import { PersistError } from '@persist/pager'
import { formatPath, type PathSegment } from './path.js'

/** A record of a store, as returned by reads through the CLI's hooks. */
export class RecordRef {
  constructor(
    readonly objects: Objects,
    readonly off: number,
    readonly kind: RecordKind,
  ) {}
}

/** A class object to be written: stored as an object record named `className`. */
export class ClassValue {
  constructor(
    readonly className: string,
    readonly fields: Record<string, unknown>,
  ) {}
}

export interface OpenStoreOptions {
  readonly?: boolean
  create?: boolean
  lockTimeoutMs?: number
}

/** Opens the objects layer of `path` with RecordRef hooks. Never creates a file unless asked. */
export function openObjects(path: string, opts: OpenStoreOptions = {}): Objects {
  let self: Objects | undefined
  const options: Parameters<typeof Objects.open>[1] = { create: opts.create ?? false }
  if (opts.readonly !== undefined) options.readonly = opts.readonly
  if (opts.lockTimeoutMs !== undefined) options.lockTimeoutMs = opts.lockTimeoutMs
  const objects = Objects.open(path, {
    ...options,
    hooks: {
      wrap: (off: number, kind: RecordKind) => new RecordRef(self!, off, kind),
      unwrap: (v: object) => (v instanceof RecordRef && v.objects === self ? v.off : undefined),
      classOf: (v: object) => (v instanceof ClassValue ? v.className : undefined),
      fieldsOf: (v: object) => (v instanceof ClassValue ? Object.entries(v.fields) : Object.entries(v)),
    },
  })
  self = objects
  return objects
}

/** Runs fn inside one transaction of `o`: commit on return, abort on throw. */
export function inTxn<R>(o: Objects, fn: () => R): R {
  o.begin()
  let r: R
  try {
    r = fn()
  } catch (e) {
    try {
      o.abort()
    } catch {}
    throw e
  }
  o.commit()
  return r
}

export function rootRef(o: Objects): RecordRef {
  return new RecordRef(o, o.rootOff, 'dict')
}

/** Follows `segs` from the root; throws PERSIST_NOT_FOUND naming the first missing step. */
export function resolvePath(o: Objects, segs: readonly PathSegment[]): unknown {
  let cur: unknown = rootRef(o)
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]
    const here = formatPath(segs.slice(0, i))
    if (!(cur instanceof RecordRef)) {
      throw new PersistError(
        'PERSIST_NOT_FOUND',
        `${here} is a ${describe(cur)}, not a dict or list: cannot look up ${JSON.stringify(String(seg))} in it`,
      )
    }
    if (cur.kind === 'list') {
      const idx = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : -1
      if (idx < 0)
        throw new PersistError(
          'PERSIST_NOT_FOUND',
          `${here} is a list: use an index like ${here}[0], not .${seg}`,
        )
      const len = o.listLength(cur.off)
      if (idx >= len)
        throw new PersistError(
          'PERSIST_NOT_FOUND',
          `${here} has ${len} item(s): index ${idx} is past the end`,
        )
      cur = o.listGet(cur.off, idx)
    } else {
      const key = String(seg)
      if (!o.dictHas(cur.off, key))
        throw new PersistError(
          'PERSIST_NOT_FOUND',
          `${here} has no key ${JSON.stringify(key)} (see \`persist dump FILE ${here}\`)`,
        )
      cur = o.dictGet(cur.off, key)
    }
  }
  return cur
}

export function describe(v: unknown): string {
  if (v instanceof RecordRef) return v.kind
  if (v === null) return 'null'
  if (v instanceof Date) return 'Date'
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return 'byte value'
  return typeof v
}

// ---- entry-at-a-time dict iteration ----------------------------------------
//
// The objects layer's dictKeys() returns every key at once (an array as large as the
// dict). To walk 10^6 entries in bounded memory the CLI reads the dict's entry array
// itself, in insertion order, one key at a time, following FORMAT.md "## Objects":
//   dict record +20 u32 dc_used (entries used, tombstones included), +32 u64 entries
//   block; entry i at block + 32*i: key slot (16 bytes) then value slot (16 bytes);
//   key slot tag 0xff = deleted entry; tags 8/9/10 = short latin1 / short UTF-16 /
//   string block (encoding u8 at +1, byte length u32 at +4, block u64 at +8).
// The walk is checked against dictSize() so a layout change fails loudly.

const DC_COUNT = 16
const DC_USED = 20
const DC_ENTRIES = 32
const ENTRY = 32
const T_SSTR = 8
const T_SSTR16 = 9
const T_STR = 10
const T_DELETED = 0xff

interface MemLike {
  u8(off: number): number
  u32(off: number): number
  u64(off: number): number
  latin1(off: number, len: number): string
  ucs2(off: number, len: number): string
}

function memOf(o: Objects): MemLike {
  return (o.pager as unknown as { mem: MemLike }).mem
}

function readKey(mem: MemLike, slot: number, dictOff: number): string {
  const tag = mem.u8(slot)
  if (tag === T_SSTR) {
    const n = mem.u8(slot + 1)
    return n === 0 ? '' : mem.latin1(slot + 2, n)
  }
  if (tag === T_SSTR16) {
    const n = mem.u8(slot + 1)
    return n === 0 ? '' : mem.ucs2(slot + 2, n * 2)
  }
  if (tag === T_STR) {
    const enc = mem.u8(slot + 1)
    const len = mem.u32(slot + 4)
    const block = mem.u64(slot + 8)
    if (len === 0) return ''
    return enc === 0 ? mem.latin1(block, len) : mem.ucs2(block, len)
  }
  throw new PersistError(
    'PERSIST_CORRUPT',
    `dict record 0x${dictOff.toString(16)}: key slot 0x${slot.toString(16)} has tag ${tag}, not a string; run \`persist check\``,
  )
}

/** Yields the keys of dict/object record `d` one at a time, in insertion order. */
export function* dictKeysOf(o: Objects, d: number): Generator<string> {
  const mem = memOf(o)
  const count = mem.u32(d + DC_COUNT)
  const used = mem.u32(d + DC_USED)
  const size = o.dictSize(d)
  if (count !== size) {
    // The layout is not what this CLI was written for: fall back to the whole key list.
    yield* o.dictKeys(d)
    return
  }
  let seen = 0
  for (let i = 0; i < used; i++) {
    // Re-read the block address each step: the caller never mutates while iterating,
    // but reading it fresh keeps this correct even if it did.
    const slot = mem.u64(d + DC_ENTRIES) + i * ENTRY
    if (mem.u8(slot) === T_DELETED) continue
    seen++
    yield readKey(mem, slot, d)
  }
  if (seen !== count)
    throw new PersistError(
      'PERSIST_CORRUPT',
      `dict record 0x${d.toString(16)}: ${seen} live entries, header says ${count}`,
    )
}

/** Reference count of a record (FORMAT.md: record header +8 u32 rc_refs). */
export function refCountOf(o: Objects, off: number): number {
  return memOf(o).u32(off + 8)
}
