/**
 * Error helpers of the CLI. Every failure a user can hit is a PersistError with a
 * code; the CLI prints it as one line `persist: <message> (<code>)` and exits with the
 * code documented in README.md ("Exit codes").
 */
import { PersistError, type PersistErrorCode } from '@persist/pager'

/** Exit codes of the `persist` command (README.md, "Exit codes"). */
export const EXIT = {
  /** The command did what was asked (`check`: the store is consistent). */
  OK: 0,
  /** `check` found problems (listed on stdout), or the file is damaged beyond opening. */
  PROBLEMS: 1,
  /** Usage error (bad arguments, bad PATH) or the store could not be opened. */
  USAGE: 2,
  /** The command started but failed (bad input to `load`, `compact` refused, lock timeout, …). */
  FAILED: 3,
} as const

export function fail(code: PersistErrorCode, message: string): never {
  throw new PersistError(code, message)
}

/** Codes raised while opening a store that mean "could not open" rather than "failed midway". */
export const OPEN_CODES: ReadonlySet<string> = new Set([
  'PERSIST_NOT_FOUND',
  'PERSIST_PERM',
  'PERSIST_NOT_STORE',
  'PERSIST_VERSION',
  'PERSIST_CORRUPT',
  'PERSIST_NATIVE',
  'PERSIST_IO',
])
