import { PersistError } from '@persist/pager'

/**
 * The class registry: which JS class a stored class name maps to. @persist/pbase
 * fills it (`register(Person)`); the facade consults it when storing a class
 * instance (name of its constructor) and when reading an object record (class of
 * its name). A class name read from a file is only ever looked up in this map: it
 * never causes code to be loaded or evaluated.
 */
export interface ClassInfo {
  readonly name: string
  readonly ctor: Function
  /** Field defaults taken once from `new ctor()`; read when an old object lacks a field. */
  readonly defaults: Record<string, unknown>
  /** Keys with a setter/getter somewhere on the prototype chain (they bypass storage). */
  readonly accessors: ReadonlySet<string>
}

/** Static hook a class may carry so that it registers itself the first time one of
 * its instances is stored (PBase subclasses do): called as `Class[autoRegister](Class)`. */
export const autoRegister: unique symbol = Symbol.for('persist.autoRegister')

const byName = new Map<string, ClassInfo>()
const byCtor = new WeakMap<Function, ClassInfo>()

function accessorKeys(proto: object | null): Set<string> {
  const keys = new Set<string>()
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, k)
      if (d && (d.get || d.set) && k !== '__proto__') keys.add(k)
    }
  }
  return keys
}

/**
 * Registers `ctor` under `name`. Registering the same class twice under the same
 * name is a no-op; a different class under a taken name, or one class under two
 * names, throws TypeError.
 */
export function registerClass(ctor: Function, name: string, defaults?: Record<string, unknown>): ClassInfo {
  if (typeof ctor !== 'function') throw new TypeError('registerClass: expected a class')
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError('registerClass: the name must be a non-empty string')
  const had = byName.get(name)
  if (had) {
    if (had.ctor === ctor) return had
    throw new TypeError(
      `class name '${name}' is already registered for another class; give one of them a distinct static persistName`,
    )
  }
  const prev = byCtor.get(ctor)
  if (prev) throw new TypeError(`class ${ctor.name} is already registered as '${prev.name}'`)
  const info: ClassInfo = {
    name,
    ctor,
    defaults: defaults ?? {},
    accessors: accessorKeys((ctor as { prototype: object }).prototype),
  }
  byName.set(name, info)
  byCtor.set(ctor, info)
  return info
}

export function classByName(name: string): ClassInfo | undefined {
  return byName.get(name)
}

/** The registered class info of `ctor`, registering it through its autoRegister hook. */
export function classOfCtor(ctor: Function): ClassInfo | undefined {
  const info = byCtor.get(ctor)
  if (info) return info
  const hook = (ctor as unknown as Record<symbol, unknown>)[autoRegister]
  if (typeof hook === 'function') {
    ;(hook as (cls: Function) => void)(ctor)
    return byCtor.get(ctor)
  }
  return undefined
}

export function unknownClass(name: string): PersistError {
  return new PersistError(
    'PERSIST_UNKNOWN_CLASS',
    `the store holds an object of class '${name}', which is not registered in this program: register it (register(${name}) from @persist/pbase) before reading, or open the store with { unknownClasses: 'dict' } to read such objects as plain dicts`,
  )
}
