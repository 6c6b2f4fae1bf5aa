import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadNative } from './native.js'

export { isPersistError, PersistError, type PersistErrorCode } from './errors.js'
export { loadNative } from './native.js'

interface NativeModule {
  abiVersion: number
  formatVersion: number
  pageSize: number
}
const native = loadNative<NativeModule>(dirname(dirname(fileURLToPath(import.meta.url))), 'pager', 1)

/** Version of the on-file format this build reads and writes (FORMAT.md). */
export const FORMAT_VERSION: number = native.formatVersion
/** Page size in bytes (4096). */
export const PAGE_SIZE: number = native.pageSize
