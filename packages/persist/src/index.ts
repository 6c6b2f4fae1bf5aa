/**
 * @persist/persist — open a file, work on plain-looking JS objects in place; every
 * change is durable (kill -9 safe) and shared live with every process that has the
 * file open. See README.md and docs/api.md.
 */
import { resolve } from 'node:path'
import { handleOfProxy } from './proxy.js'
import { type OpenOptions, Store } from './store.js'

export { isPersistError, PersistError, type PersistErrorCode } from '@persist/pager'
export { autoRegister, type ClassInfo, classByName, registerClass } from './classes.js'
export { type Durability, type OpenOptions, Store } from './store.js'

/**
 * Opens (creating by default) the store at `path`. The type parameter describes the
 * root: `open<{ visits?: number }>('site.persist').root.visits`.
 */
export function open<T extends object = Record<string, any>>(
  path: string,
  options: OpenOptions = {},
): Store<T> {
  if (typeof path !== 'string' || path.length === 0)
    throw new TypeError('open(path): path must be a non-empty string')
  return new Store<T>(path, options)
}

let defaultStore: Store | undefined

/**
 * The default store's root: the file named by the environment variable PERSIST_PATH,
 * else ./data.persist, opened on first use and kept open for the life of the process.
 */
export function root<T extends object = Record<string, any>>(): T {
  if (!defaultStore || defaultStore.closed) {
    defaultStore = open(resolve(process.env.PERSIST_PATH || 'data.persist'))
  }
  return defaultStore.root as T
}

/** The default store opened by root(), if any. */
export function defaultStoreOf(): Store | undefined {
  return defaultStore
}

/**
 * A plain, deep snapshot of a persistent value (dicts → objects, lists → arrays,
 * class objects → plain objects; shared records stay shared, cycles are kept).
 * Anything that is not a persist proxy is returned as it is.
 */
export function toJS<T>(value: T): T {
  const h = handleOfProxy(value)
  if (!h) return value
  return h.store.snapshot(h) as T
}

/** True when v is a proxy of a persistent dict, list or class object. */
export function isPersistent(v: unknown): boolean {
  return handleOfProxy(v) !== undefined
}
