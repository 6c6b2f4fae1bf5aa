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

/**
 * Yields the keys of dict/object record `d` one at a time, in insertion order, with
 * O(1) memory (the objects layer's dictIterKeys: every step re-validates the dict, so
 * a damaged file gives PERSIST_CORRUPT and a change made while walking is followed or
 * reported, never silently skipped).
 */
export function dictKeysOf(o: Objects, d: number): Generator<string> {
  return o.dictIterKeys(d)
}

/** [key, value] pairs of dict/object record `d`, streamed like dictKeysOf (one lookup less per entry). */
export function dictEntriesOf(o: Objects, d: number): Generator<[string, unknown]> {
  return o.dictIterEntries(d)
}

interface MemLike {
  u32(off: number): number
}

function memOf(o: Objects): MemLike {
  return (o.pager as unknown as { mem: MemLike }).mem
}

/** Reference count of a record (FORMAT.md: record header +8 u32 rc_refs). */
export function refCountOf(o: Objects, off: number): number {
  return memOf(o).u32(off + 8)
}
