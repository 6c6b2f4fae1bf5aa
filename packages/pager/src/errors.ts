/**
 * The one error class of every persist layer. `code` is stable and documented in
 * docs/api.md; `message` says what happened and what to do.
 */
export type PersistErrorCode =
  | 'PERSIST_CORRUPT'
  | 'PERSIST_NOT_STORE'
  | 'PERSIST_VERSION'
  | 'PERSIST_LOCKED'
  | 'PERSIST_NOSPC'
  | 'PERSIST_CLOSED'
  | 'PERSIST_IO'
  | 'PERSIST_PERM'
  | 'PERSIST_NOT_FOUND'
  | 'PERSIST_TXN'
  | 'PERSIST_INVALID'
  | 'PERSIST_READONLY'
  | 'PERSIST_UNSUPPORTED'
  | 'PERSIST_TOO_BIG'
  | 'PERSIST_STALE'
  | 'PERSIST_UNKNOWN_CLASS'
  | 'PERSIST_NATIVE'

export class PersistError extends Error {
  readonly code: PersistErrorCode
  constructor(code: PersistErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PersistError'
    this.code = code
  }
}

export function isPersistError(e: unknown, code?: PersistErrorCode): e is PersistError {
  return e instanceof PersistError && (code === undefined || e.code === code)
}
