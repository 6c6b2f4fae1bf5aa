import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadNative } from '@persist/pager'

interface NativeModule {
  abiVersion: number
  align: number
}
const native = loadNative<NativeModule>(dirname(dirname(fileURLToPath(import.meta.url))), 'heap', 1)

/** Alignment of every block returned by alloc(), in bytes. */
export const ALIGN: number = native.align
