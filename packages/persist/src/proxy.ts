/**
 * Proxies that make records of the store look like plain objects and arrays.
 *
 * One handler object per kind is shared by every proxy; per-proxy state lives on the
 * proxy's target (a Handle). Every trap first calls `h.store.enter(h)`, which opens
 * the turn's transaction if needed (lock + begin) and throws PERSIST_CLOSED or
 * PERSIST_STALE, so a trap never reads memory of a freed record.
 *
 * JS semantics kept (tested side by side with plain objects/arrays in test/semantics):
 *  - dict: get/set/delete/in, Object.keys/values/entries (integer-like keys first,
 *    ascending, then insertion order), spread, for…in, JSON.stringify, util.inspect.
 *  - list: Array.isArray, index get/set, length (get and set), every Array.prototype
 *    method (generic ones run through the traps; push/pop/shift/unshift/splice/sort/
 *    reverse are done natively by the objects layer with identical results).
 * Documented differences (they throw rather than differ silently where possible):
 *  - lists have no holes: `delete list[i]` stores undefined; non-index properties
 *    cannot be stored on a list (TypeError).
 *  - Object.defineProperty with accessors, Object.setPrototypeOf, Object.freeze/seal/
 *    preventExtensions throw TypeError; symbols cannot be stored as keys (TypeError).
 *  - structuredClone/postMessage cannot clone a Proxy: use toJS() (see README).
 */
import { inspect } from 'node:util'
import type { ClassInfo } from './classes.js'

export const HANDLE: unique symbol = Symbol('persist.handle')

/** What a Store must offer its proxies. */
export interface ProxyHost {
  /** Opens/joins the turn's transaction; verifies the handle is live. */
  enter(h: Handle): void
  readonly objects: import('@persist/objects').Objects
  readonly readonly: boolean
  writeGuard(): void
  snapshot(h: Handle): unknown
}

export class Handle {
  constructor(
    readonly store: ProxyHost,
    readonly off: number,
    readonly gen: number,
    readonly kind: 'dict' | 'list' | 'object',
    readonly cls: ClassInfo | undefined,
  ) {}
  /** The proxy, held weakly: the store's cache maps offset → Handle. */
  ref: WeakRef<object> | undefined
  dead = false
  /** Transaction serial in which this handle was last verified live (S3). */
  seen = -1
}

/** Targets carry the handle and a custom inspect so console.log shows the contents. */
const dictTargetProto = Object.create(null, {
  [inspect.custom]: {
    value(this: { [HANDLE]: Handle }, depth: number, options: object, insp: typeof inspect) {
      const h = this[HANDLE]
      const snap = h.store.snapshot(h)
      if (h.cls) Object.setPrototypeOf(snap, h.cls.ctor.prototype)
      return insp(snap, { ...options, depth })
    },
  },
})

function newDictTarget(h: Handle): object {
  const t = Object.create(dictTargetProto)
  Object.defineProperty(t, HANDLE, { value: h, configurable: true })
  return t
}

function newListTarget(h: Handle): object {
  const t: unknown[] = []
  Object.defineProperty(t, HANDLE, { value: h, configurable: true })
  Object.defineProperty(t, inspect.custom, {
    value(depth: number, options: object, insp: typeof inspect) {
      return insp(h.store.snapshot(h), { ...options, depth })
    },
    configurable: true,
  })
  return t
}

/** Canonical array index ("0", "17"; not "01", "-1", "1.5", "4294967295"). */
export function arrayIndex(key: string): number {
  const n = key.length
  if (n === 0 || n > 10) return -1
  const c0 = key.charCodeAt(0)
  if (c0 < 48 || c0 > 57 || (c0 === 48 && n > 1)) return -1
  let v = 0
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i)
    if (c < 48 || c > 57) return -1
    v = v * 10 + (c - 48)
  }
  return v < 4294967295 ? v : -1
}

/** Own keys in the order a plain object reports them: integer keys ascending, then the rest. */
export function orderKeys(keys: string[]): string[] {
  let ints: string[] | undefined
  let rest: string[] | undefined
  for (let i = 0; i < keys.length; i++) {
    if (arrayIndex(keys[i]) >= 0) {
      if (!ints) {
        ints = []
        rest = keys.slice(0, i)
      }
      ints.push(keys[i])
    } else if (rest) rest.push(keys[i])
  }
  if (!ints) return keys
  ints.sort((a, b) => Number(a) - Number(b))
  return ints.concat(rest!)
}

/** dictGetOr's marker for a missing key (a key may hold undefined). */
const ABSENT: unique symbol = Symbol('persist.absent')

function noSymbolKey(key: symbol, what: string): never {
  throw new TypeError(`${what}: symbol keys cannot be stored in a persistent object (${String(key)})`)
}

const dictHandler: ProxyHandler<{ [HANDLE]: Handle }> = {
  get(t, key, receiver) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') {
      if (key === HANDLE) return h
      if (key === inspect.custom) return (dictTargetProto as Record<symbol, unknown>)[inspect.custom]
      return h.cls
        ? Reflect.get(h.cls.ctor.prototype, key, receiver)
        : Reflect.get(Object.prototype, key, receiver)
    }
    h.store.enter(h)
    const o = h.store.objects
    if (h.cls?.accessors.has(key)) return Reflect.get(h.cls.ctor.prototype, key, receiver)
    const v = o.dictGetOr(h.off, key, ABSENT) // one lookup (O12 of objects: O(1) right after ownKeys)
    if (v !== ABSENT) return v
    if (h.cls) {
      if (Object.hasOwn(h.cls.defaults, key)) {
        const d = h.cls.defaults[key]
        if (d === null || typeof d !== 'object' || h.store.readonly) return d
        // An object default (e.g. `tags = []`) is stored on first read, so that
        // mutating it mutates this object, not a shared default.
        o.dictSet(h.off, key, d)
        return o.dictGet(h.off, key)
      }
      return Reflect.get(h.cls.ctor.prototype, key, receiver)
    }
    if (key === '__proto__') return Object.prototype
    return (Object.prototype as Record<string, unknown>)[key]
  },
  set(t, key, value, receiver) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') noSymbolKey(key, 'set')
    if (h.cls?.accessors.has(key)) return Reflect.set(h.cls.ctor.prototype, key, value, receiver)
    if (key === '__proto__')
      throw new TypeError('cannot change the prototype of a persistent object (__proto__)')
    h.store.enter(h)
    h.store.writeGuard()
    h.store.objects.dictSet(h.off, key, value)
    return true
  },
  has(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return key === HANDLE || key in Object.prototype
    h.store.enter(h)
    if (h.store.objects.dictHas(h.off, key)) return true
    if (h.cls) return Object.hasOwn(h.cls.defaults, key) || key in h.cls.ctor.prototype
    return key in Object.prototype
  },
  deleteProperty(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return true
    h.store.enter(h)
    h.store.writeGuard()
    h.store.objects.dictDelete(h.off, key)
    return true
  },
  ownKeys(t) {
    const h = t[HANDLE]
    h.store.enter(h)
    // dictKeys also remembers the entry of each key until the dict's layout changes,
    // so the descriptor/get calls V8 makes next for every key (Object.keys/entries,
    // for…in, spread) cost one string comparison each instead of a hash lookup
    const keys = orderKeys(h.store.objects.dictKeys(h.off))
    if (h.cls) {
      const extra = Object.keys(h.cls.defaults).filter((k) => !h.store.objects.dictHas(h.off, k))
      if (extra.length) return orderKeys(keys.concat(extra))
    }
    return keys
  },
  getOwnPropertyDescriptor(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return undefined
    h.store.enter(h)
    const v = h.store.objects.dictGetOr(h.off, key, ABSENT) // one lookup, not dictHas + dictGet
    if (v !== ABSENT) return { value: v, writable: true, enumerable: true, configurable: true }
    if (h.cls && Object.hasOwn(h.cls.defaults, key))
      return { value: h.cls.defaults[key], writable: true, enumerable: true, configurable: true }
    return undefined
  },
  defineProperty(t, key, desc) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') noSymbolKey(key, 'defineProperty')
    if (desc.get || desc.set)
      throw new TypeError(`defineProperty '${key}': accessors cannot be stored in a persistent object`)
    if (!('value' in desc)) return true
    h.store.enter(h)
    h.store.writeGuard()
    h.store.objects.dictSet(h.off, key, desc.value)
    return true
  },
  getPrototypeOf(t) {
    const h = t[HANDLE]
    return h.cls ? h.cls.ctor.prototype : Object.prototype
  },
  setPrototypeOf() {
    throw new TypeError('cannot change the prototype of a persistent object')
  },
  preventExtensions() {
    throw new TypeError('persistent objects cannot be frozen, sealed or made non-extensible')
  },
}

const fastListMethods: Record<string, (this: unknown, ...a: unknown[]) => unknown> = {
  push(this: unknown, ...items: unknown[]) {
    const h = handleOf(this, 'push')
    h.store.enter(h)
    h.store.writeGuard()
    return h.store.objects.listPush(h.off, ...items)
  },
  pop(this: unknown) {
    const h = handleOf(this, 'pop')
    h.store.enter(h)
    if (h.store.objects.listLength(h.off) === 0) return undefined
    h.store.writeGuard()
    return h.store.objects.listPop(h.off)
  },
  shift(this: unknown) {
    const h = handleOf(this, 'shift')
    h.store.enter(h)
    if (h.store.objects.listLength(h.off) === 0) return undefined
    h.store.writeGuard()
    return h.store.objects.listSplice(h.off, 0, 1, [])[0]
  },
  unshift(this: unknown, ...items: unknown[]) {
    const h = handleOf(this, 'unshift')
    h.store.enter(h)
    if (items.length) {
      h.store.writeGuard()
      h.store.objects.listSplice(h.off, 0, 0, items)
    }
    return h.store.objects.listLength(h.off)
  },
  splice(this: unknown, ...args: unknown[]) {
    const h = handleOf(this, 'splice')
    h.store.enter(h)
    const len = h.store.objects.listLength(h.off)
    const start = relIndex(args[0], len)
    let del: number
    if (args.length === 0) del = 0
    else if (args.length === 1) del = len - start
    else del = Math.min(Math.max(toIntegerOrInfinity(args[1]), 0), len - start)
    const items = args.slice(2)
    if (del === 0 && items.length === 0) return []
    h.store.writeGuard()
    return h.store.objects.listSplice(h.off, start, del, items)
  },
  sort(this: unknown, compare?: unknown) {
    if (compare !== undefined && typeof compare !== 'function')
      throw new TypeError('The comparison function must be either a function or undefined')
    const h = handleOf(this, 'sort')
    h.store.enter(h)
    h.store.writeGuard()
    h.store.objects.listSort(h.off, compare as ((a: unknown, b: unknown) => number) | undefined)
    return this
  },
  reverse(this: unknown) {
    const h = handleOf(this, 'reverse')
    h.store.enter(h)
    h.store.writeGuard()
    h.store.objects.listReverse(h.off)
    return this
  },
}

function toIntegerOrInfinity(v: unknown): number {
  const n = Number(v)
  if (Number.isNaN(n)) return 0
  return Math.trunc(n)
}

function relIndex(v: unknown, len: number): number {
  const n = toIntegerOrInfinity(v)
  if (n < 0) return Math.max(len + n, 0)
  return Math.min(n, len)
}

function handleOf(self: unknown, method: string): Handle {
  const h =
    self && typeof self === 'object' ? (self as Record<symbol, Handle | undefined>)[HANDLE] : undefined
  if (!h) throw new TypeError(`Array.prototype.${method} (persistent list) called on a foreign receiver`)
  return h
}

const listHandler: ProxyHandler<unknown[] & { [HANDLE]: Handle }> = {
  get(t, key, receiver) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') {
      if (key === HANDLE) return h
      return Reflect.get(t, key, receiver)
    }
    const i = arrayIndex(key)
    h.store.enter(h)
    if (i >= 0) return h.store.objects.listGet(h.off, i)
    if (key === 'length') return h.store.objects.listLength(h.off)
    const fast = fastListMethods[key]
    if (fast !== undefined && Object.hasOwn(fastListMethods, key)) return fast
    return Reflect.get(Array.prototype, key, receiver)
  },
  set(t, key, value) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') noSymbolKey(key, 'set')
    h.store.enter(h)
    const i = arrayIndex(key)
    if (i >= 0) {
      h.store.writeGuard()
      h.store.objects.listSet(h.off, i, value)
      return true
    }
    if (key === 'length') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 0 || n >= 4294967296) throw new RangeError('Invalid array length')
      h.store.writeGuard()
      h.store.objects.listSetLength(h.off, n)
      return true
    }
    throw new TypeError(`persistent lists hold only indexed elements; cannot set property '${key}'`)
  },
  has(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return key === HANDLE || key in Array.prototype
    h.store.enter(h)
    const i = arrayIndex(key)
    if (i >= 0) return i < h.store.objects.listLength(h.off)
    return key === 'length' || key in Array.prototype
  },
  deleteProperty(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return true
    h.store.enter(h)
    const i = arrayIndex(key)
    if (i >= 0) {
      // No holes in a persistent list: the element becomes undefined (documented).
      if (i < h.store.objects.listLength(h.off)) {
        h.store.writeGuard()
        h.store.objects.listSet(h.off, i, undefined)
      }
      return true
    }
    if (key === 'length') return false
    return true
  },
  ownKeys(t) {
    const h = t[HANDLE]
    h.store.enter(h)
    const n = h.store.objects.listLength(h.off)
    const keys: string[] = new Array(n + 1)
    for (let i = 0; i < n; i++) keys[i] = String(i)
    keys[n] = 'length'
    return keys
  },
  getOwnPropertyDescriptor(t, key) {
    const h = t[HANDLE]
    if (typeof key === 'symbol') return undefined
    h.store.enter(h)
    if (key === 'length')
      return {
        value: h.store.objects.listLength(h.off),
        writable: true,
        enumerable: false,
        configurable: false,
      }
    const i = arrayIndex(key)
    if (i >= 0 && i < h.store.objects.listLength(h.off))
      return {
        value: h.store.objects.listGet(h.off, i),
        writable: true,
        enumerable: true,
        configurable: true,
      }
    return undefined
  },
  defineProperty(t, key, desc) {
    if (typeof key === 'symbol') noSymbolKey(key, 'defineProperty')
    if (desc.get || desc.set)
      throw new TypeError(`defineProperty '${key}': accessors cannot be stored in a persistent list`)
    if (!('value' in desc)) return true
    return listHandler.set!(t, key, desc.value, t)
  },
  getPrototypeOf() {
    return Array.prototype
  },
  setPrototypeOf() {
    throw new TypeError('cannot change the prototype of a persistent list')
  },
  preventExtensions() {
    throw new TypeError('persistent lists cannot be frozen, sealed or made non-extensible')
  },
}

export function makeProxy(h: Handle): object {
  const p =
    h.kind === 'list'
      ? new Proxy(newListTarget(h) as unknown[] & { [HANDLE]: Handle }, listHandler)
      : new Proxy(newDictTarget(h) as { [HANDLE]: Handle }, dictHandler)
  h.ref = new WeakRef(p)
  return p
}

/** The handle behind a persist proxy, or undefined for anything else. */
export function handleOfProxy(v: unknown): Handle | undefined {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined
  try {
    return (v as Record<symbol, Handle | undefined>)[HANDLE]
  } catch {
    return undefined
  }
}
