/**
 * The one place the demo touches the persist packages.
 *
 * INTERIM: @persist/persist and @persist/pbase are still being written, so the
 * module is loaded dynamically and typed with the API they promise. The test suite
 * may point PERSIST_DEMO_BACKEND at its stand-in (apps/demo-cgi/test/fixtures).
 * Once the facade lands this file becomes two static imports.
 */

export interface Store {
  readonly root: any
  transaction<T>(fn: () => T): T
  close(): void
}

export interface PersistErrorLike extends Error {
  code: string
}

interface Backend {
  open(path: string, options?: { lockTimeoutMs?: number }): Store
  PBase: new () => object
  register(cls: Function): void
  PersistError: new (...args: any[]) => PersistErrorLike
}

async function load(): Promise<Backend> {
  const override = process.env.PERSIST_DEMO_BACKEND
  if (override) return (await import(override)) as Backend
  const persist: any = await import('@persist/persist')
  const pbase: any = await import('@persist/pbase')
  return {
    open: persist.open,
    PersistError: persist.PersistError,
    PBase: pbase.PBase,
    register: pbase.register,
  }
}

const backend = await load()

export const open = backend.open
export const PBase = backend.PBase
export const register = backend.register
export const PersistError = backend.PersistError

export function isPersistError(e: unknown): e is PersistErrorLike {
  return typeof PersistError === 'function' && e instanceof PersistError
}
