/**
 * @persist/pbase — persistent domain classes.
 *
 * ```ts
 * class Person extends PBase {
 *   name = ''; age = 0
 *   constructor(name = '', age = 0) { super(); this.name = name; this.age = age }
 *   birthday() { this.age += 1 }
 * }
 * register(Person)
 * root.joe = new Person('Joe', 27)   // stored as a dict + the class name 'Person'
 * root.joe instanceof Person          // true, in this or any other process that registered Person
 * root.joe.birthday()                 // updates the file in place
 * ```
 *
 * Rules (as in Durus/ZODB): loading an object does NOT run its constructor; the
 * optional `onLoad()` method runs once per process when the object is first read.
 * Field defaults for objects written by an older version of the class come from
 * `new Class()` called once, with no arguments, at registration. A class name read
 * from a file is only looked up among registered classes — never loaded or evaluated.
 */
import { autoRegister, classByName, registerClass } from '@persist/persist'

type AnyClass = abstract new (...args: any[]) => object

/** Base class of persistent domain objects. */
export abstract class PBase {
  /**
   * Stable name stored in the file (default: the class name). Set it when two
   * classes share a name or before renaming a class: `static persistName = 'acme.Person'`.
   */
  static persistName?: string

  /** Registers the class the first time one of its instances is stored. */
  static [autoRegister](cls: AnyClass): void {
    register(cls)
  }

  /** Optional hook run after an object is loaded from the store (constructor is not run). */
  onLoad?(): void
}

function nameOf(cls: AnyClass): string {
  const own = Object.hasOwn(cls, 'persistName') ? (cls as { persistName?: unknown }).persistName : undefined
  if (own !== undefined) {
    if (typeof own !== 'string' || own.length === 0)
      throw new TypeError(`${cls.name}.persistName must be a non-empty string`)
    return own
  }
  if (!cls.name) throw new TypeError('register(): anonymous classes need a static persistName')
  return cls.name
}

function defaultsOf(cls: AnyClass): Record<string, unknown> {
  let probe: object
  try {
    probe = Reflect.construct(cls, [])
  } catch {
    return {} // a constructor that needs arguments gives no defaults (documented)
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(probe)) if (typeof v !== 'function') out[k] = v
  return out
}

/**
 * Registers a PBase subclass under its persistName (default: class name) so objects
 * of that class can be stored and re-instantiated. Call it at startup in every
 * program that reads such objects. Returns the class. Registering one name for two
 * classes throws TypeError.
 */
export function register<C extends AnyClass>(cls: C, name?: string): C {
  if (typeof cls !== 'function' || !(cls.prototype instanceof PBase))
    throw new TypeError('register(cls): cls must be a class extending PBase')
  const n = name ?? nameOf(cls)
  const had = classByName(n)
  if (had?.ctor === cls) return cls
  registerClass(cls, n, defaultsOf(cls))
  return cls
}

/** The registered class for a stored name, if any. */
export function registeredClass(name: string): Function | undefined {
  return classByName(name)?.ctor
}
