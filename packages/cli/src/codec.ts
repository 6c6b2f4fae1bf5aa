/**
 * The JSON form of store values ("persist JSON", README.md "Dump format").
 *
 * Plain JSON covers null, booleans, finite numbers, strings, dicts and lists. Values
 * JSON cannot hold are written as a one-key-tagged object whose first key is
 * "$persist" — the exact inverse is applied by `persist load`:
 *
 *   undefined                 {"$persist":"undefined"}
 *   -0, NaN, ±Infinity        {"$persist":"number","value":"-0"}   ("NaN", "Infinity", "-Infinity")
 *   bigint                    {"$persist":"bigint","value":"123456789012345678901"}
 *   Date                      {"$persist":"date","value":"2026-11-23T12:00:00.000Z"}   (null: invalid date)
 *   bytes / typed arrays      {"$persist":"bytes","type":"Uint8Array","base64":"AAEC"}
 *   class object              {"$persist":"object","class":"Person","value":{…fields…}}
 *   dict with a "$persist" key {"$persist":"dict","value":{…}}  (so the key never looks like a tag)
 *   shared record / cycle     {"$persist":"ref","path":"$.people.joe"}
 *
 * A record referenced more than once (rc_refs > 1) is written in full the first time
 * the walk meets it and as a "ref" to that first place afterwards; `$` is the value
 * being dumped, so a dump of a sub-tree loads back anywhere with --path.
 */
import { PersistError } from '@persist/pager'
import { ClassValue } from './access.js'
import { joinPath } from './path.js'

export const TAG = '$persist'

const BYTES_CTORS: Record<string, (b: Buffer) => unknown> = {
  Uint8Array: (b) => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)),
  Int8Array: (b) => new Int8Array(ab(b)),
  Uint8ClampedArray: (b) => new Uint8ClampedArray(ab(b)),
  Int16Array: (b) => new Int16Array(ab(b)),
  Uint16Array: (b) => new Uint16Array(ab(b)),
  Int32Array: (b) => new Int32Array(ab(b)),
  Uint32Array: (b) => new Uint32Array(ab(b)),
  Float32Array: (b) => new Float32Array(ab(b)),
  Float64Array: (b) => new Float64Array(ab(b)),
  BigInt64Array: (b) => new BigInt64Array(ab(b)),
  BigUint64Array: (b) => new BigUint64Array(ab(b)),
  ArrayBuffer: (b) => ab(b),
  DataView: (b) => new DataView(ab(b)),
  Buffer: (b) => Buffer.from(b),
}

function ab(b: Buffer): ArrayBuffer {
  const copy = new ArrayBuffer(b.length)
  new Uint8Array(copy).set(b)
  return copy
}

/** JSON text of a scalar (non-record) value read from a store. */
export function scalarJSON(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'boolean':
      return v ? 'true' : 'false'
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return JSON.stringify(v)
      return `{"${TAG}":"number","value":"${Object.is(v, -0) ? '-0' : String(v)}"}`
    case 'bigint':
      return `{"${TAG}":"bigint","value":"${v.toString()}"}`
    case 'undefined':
      return `{"${TAG}":"undefined"}`
  }
  if (v === null) return 'null'
  if (v instanceof Date) {
    const t = v.getTime()
    return `{"${TAG}":"date","value":${Number.isNaN(t) ? 'null' : JSON.stringify(v.toISOString())}}`
  }
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const type = Buffer.isBuffer(v) ? 'Buffer' : v instanceof ArrayBuffer ? 'ArrayBuffer' : v.constructor.name
    const bytes =
      v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    return `{"${TAG}":"bytes","type":${JSON.stringify(type)},"base64":"${bytes.toString('base64')}"}`
  }
  throw new PersistError('PERSIST_UNSUPPORTED', `cannot write a value of type ${typeof v} as JSON`)
}

/** What revive() needs from its caller while turning input back into values. */
export interface ReviveContext {
  /** Maps a "$persist":"ref" path to the value it names (a container revived earlier, or a stored record). */
  resolveRef(path: string, where: string): unknown
  /** Called with every container (dict, list, class object) as soon as it exists, before its children. */
  register(path: string, container: object): void
}

/**
 * Turns a parsed "persist JSON" value back into the JS value to store, in place where
 * it can. `where` is the value's path in ref syntax ("$.people.joe"), used to register
 * containers for later refs and to name the position in error messages.
 */
export function revive(v: unknown, where: string, ctx: ReviveContext): unknown {
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    ctx.register(where, v)
    for (let i = 0; i < v.length; i++) v[i] = revive(v[i], joinPath(where, i), ctx)
    return v
  }
  const o = v as Record<string, unknown>
  if (Object.hasOwn(o, TAG)) return reviveTagged(o, where, ctx)
  return reviveDict(o, where, ctx)
}

function reviveDict(o: Record<string, unknown>, where: string, ctx: ReviveContext): Record<string, unknown> {
  ctx.register(where, o)
  for (const k of Object.keys(o)) {
    const r = revive(o[k], joinPath(where, k), ctx)
    // JSON.parse makes "__proto__" an own data property; plain assignment would not.
    if (k === '__proto__')
      Object.defineProperty(o, k, { value: r, enumerable: true, writable: true, configurable: true })
    else o[k] = r
  }
  return o
}

function badTag(where: string, what: string): never {
  throw new PersistError(
    'PERSIST_INVALID',
    `input at ${where}: ${what} (see the README of @persist/cli, "Dump format")`,
  )
}

function isDict(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function reviveTagged(o: Record<string, unknown>, where: string, ctx: ReviveContext): unknown {
  const tag = o[TAG]
  const val = o.value
  switch (tag) {
    case 'undefined':
      return undefined
    case 'number':
      if (val === '-0') return -0
      if (val === 'NaN') return Number.NaN
      if (val === 'Infinity') return Number.POSITIVE_INFINITY
      if (val === '-Infinity') return Number.NEGATIVE_INFINITY
      return badTag(where, '"number" value must be "-0", "NaN", "Infinity" or "-Infinity"')
    case 'bigint':
      if (typeof val !== 'string' || !/^-?\d+$/.test(val))
        badTag(where, '"bigint" value must be a decimal string')
      return BigInt(val as string)
    case 'date':
      if (val === null) return new Date(Number.NaN)
      if (typeof val !== 'string' && typeof val !== 'number')
        badTag(where, '"date" value must be an ISO string or null')
      return new Date(val as string)
    case 'bytes': {
      const make = BYTES_CTORS[String(o.type)]
      if (!make) badTag(where, `unknown bytes type ${JSON.stringify(o.type)}`)
      if (typeof o.base64 !== 'string') badTag(where, '"bytes" needs a "base64" string')
      return make(Buffer.from(o.base64 as string, 'base64'))
    }
    case 'object': {
      if (typeof o.class !== 'string' || o.class === '') badTag(where, '"object" needs a "class" name')
      if (!isDict(val)) badTag(where, '"object" needs a "value" dict')
      const fields: Record<string, unknown> = {}
      const cv = new ClassValue(o.class as string, fields)
      ctx.register(where, cv)
      for (const k of Object.keys(val)) {
        Object.defineProperty(fields, k, {
          value: revive(val[k], joinPath(where, k), ctx),
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
      return cv
    }
    case 'dict':
      if (!isDict(val)) badTag(where, '"dict" needs a "value" dict')
      return reviveDict(val, where, ctx)
    case 'ref':
      if (typeof o.path !== 'string') badTag(where, '"ref" needs a "path" string')
      return ctx.resolveRef(o.path as string, where)
    default:
      return badTag(where, `unknown "$persist" tag ${JSON.stringify(tag)}`)
  }
}
