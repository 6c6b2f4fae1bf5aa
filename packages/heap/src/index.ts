import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  loadNative,
  type Mem,
  type NativeOpenOptions,
  type NativePager,
  Pager,
  type PagerOptions,
  PersistError,
  validatePagerOptions,
} from '@persist/pager'

/** @internal The heap addon's handle: the pager's methods plus the heap's. */
interface NativeHeap extends NativePager {
  heapInitialized(): boolean
  heapInit(): void
  alloc(size: number, zero: boolean): number
  free(off: number): void
  realloc(off: number, size: number): number
  usableSize(off: number): number
  root(i: number): number
  setRoot(i: number, off: number): void
  heapStats(): HeapStats
  heapCheck(): string[]
  blocks(): Float64Array
  state(): ArrayBuffer
}

interface NativeModule {
  abiVersion: number
  align: number
  maxAlloc: number
  maxSmall: number
  rootCount: number
  setErrorClass(cls: typeof PersistError): void
  HeapHandle: new (path: string, options: NativeOpenOptions) => NativeHeap
}
const native = loadNative<NativeModule>(dirname(dirname(fileURLToPath(import.meta.url))), 'heap', 2)
native.setErrorClass(PersistError)

/** Alignment of every block returned by alloc(), in bytes (16). */
export const ALIGN: number = native.align
/** The largest block alloc() can return, in bytes (1 GiB - 64 KiB - 64). */
export const MAX_ALLOC: number = native.maxAlloc
/** Blocks up to this size (32 KiB) live in slabs; larger ones are page runs. */
export const MAX_SMALL: number = native.maxSmall
/** Number of root slots (8). Slot 0 belongs to @persist/objects when that layer is used. */
export const ROOT_COUNT: number = native.rootCount

/** Options of openHeap(): the same as openPager()'s. */
export type HeapOptions = PagerOptions

export interface HeapClassStats {
  /** Bytes per block of this size class. */
  blockSize: number
  /** Pages per slab of this class. */
  slabPages: number
  /** Blocks per slab. */
  slabCapacity: number
  /** Slabs of this class in the store. */
  slabs: number
  /** Live blocks of this class. */
  live: number
  /** slabs * slabCapacity. */
  capacity: number
}

export interface HeapStats {
  /** Usable bytes of all live blocks. */
  bytesLive: number
  /** Number of live blocks. */
  blocksLive: number
  /** Bytes of free blocks inside slabs (reusable by blocks of the same class). */
  bytesFreeInSlabs: number
  /** Pages held by slabs. */
  slabPages: number
  /** Pages held by large blocks. */
  largePages: number
  /** Number of large blocks (> 32 KiB). */
  largeBlocks: number
  /** 1 once the heap is initialised (its meta page). */
  metaPages: number
  /** metaPages + slabPages + largePages. */
  heapPages: number
  /** Pages in the store. */
  totalPages: number
  /** Free pages of the store. */
  freePages: number
  /** heapPages * 4096 / bytesLive (0 when nothing is live); 1.0 would be no overhead. */
  fragmentation: number
  /** One entry per size class, smallest first. */
  classes: HeapClassStats[]
}

export interface AllocOptions {
  /** Fill the whole usable size with zeros (default false). */
  zero?: boolean
}

/** The Pager of a heap handle; refreshes its views when the heap grew the file. */
class HeapPager extends Pager {
  /** @internal */
  _sync(): void {
    this.refreshMem()
  }
}

function checkOffset(what: string, off: unknown): asserts off is number {
  if (typeof off !== 'number') throw new TypeError(`${what}: offset must be a number, got ${typeof off}`)
  if (!Number.isSafeInteger(off) || off < 0)
    throw new RangeError(`${what}: offset must be a non-negative integer, got ${off}`)
}
function checkSize(what: string, size: unknown): asserts size is number {
  if (typeof size !== 'number') throw new TypeError(`${what}: size must be a number, got ${typeof size}`)
  if (!Number.isSafeInteger(size) || size < 1)
    throw new RangeError(`${what}: size must be an integer of at least 1 byte, got ${size}`)
}
function checkRoot(what: string, i: unknown): asserts i is number {
  if (typeof i !== 'number') throw new TypeError(`${what}: root index must be a number, got ${typeof i}`)
  if (!Number.isInteger(i) || i < 0 || i >= ROOT_COUNT)
    throw new RangeError(`${what}: root index must be an integer from 0 to ${ROOT_COUNT - 1}, got ${i}`)
}

/**
 * malloc/free inside a persist store. Blocks are named by their byte offset in the
 * file (16-byte aligned, never 0); read and write them through `mem` after calling
 * `pager.willWrite(offset, length)` inside a transaction.
 *
 * Every method may be called inside a transaction (`transaction(fn)` or
 * `pager.begin()`/`commit()`); a mutation called outside one runs in a transaction of
 * its own (it takes the store lock, and commits before returning), so it is atomic
 * and durable on its own, and reads see a consistent heap even while other
 * processes write.
 */
export class Heap {
  /** The store's page manager (the same native handle): transactions, willWrite, slots. */
  readonly pager: Pager
  private readonly h: NativeHeap
  private readonly st: Uint32Array
  private gen: number

  /** @internal Use openHeap(). */
  constructor(handle: NativeHeap) {
    this.h = handle
    this.pager = new HeapPager(handle)
    this.st = new Uint32Array(handle.state())
    this.gen = this.st[0]
  }

  /** Accessors over the mapped file (the pager's; refreshed after growth). */
  get mem(): Mem {
    return this.pager.mem
  }

  private sync(): void {
    if (this.st[0] !== this.gen) {
      this.gen = this.st[0]
      ;(this.pager as HeapPager)._sync()
    }
  }

  private live(): NativeHeap {
    if (this.pager.closed)
      throw new PersistError('PERSIST_CLOSED', 'the store is closed; open it again to use it')
    return this.h
  }

  /**
   * A block of at least `size` bytes (its usable size may be larger: usableSize()).
   * Errors: PERSIST_TOO_BIG above MAX_ALLOC, PERSIST_NOSPC when the file cannot grow,
   * PERSIST_LOCKED / PERSIST_READONLY from the pager.
   */
  alloc(size: number, options?: AllocOptions): number {
    checkSize('alloc', size)
    let zero = false
    if (options !== undefined) {
      if (options === null || typeof options !== 'object')
        throw new TypeError('alloc: options must be an object')
      if (options.zero !== undefined && typeof options.zero !== 'boolean')
        throw new TypeError('alloc: options.zero must be a boolean')
      zero = options.zero === true
    }
    const h = this.live()
    try {
      return h.alloc(size, zero)
    } finally {
      this.sync()
    }
  }

  /** Frees a live block. PERSIST_INVALID (message says why) for anything else: double free, not a block start, outside the file. */
  free(offset: number): void {
    checkOffset('free', offset)
    this.live().free(offset)
    this.sync()
  }

  /**
   * Resizes a block and returns its offset: the same one when the new size fits and
   * is at least half the usable size, or when a large block can grow into the free
   * pages after it; otherwise a new block holding the old contents (up to the new
   * size), the old one freed.
   */
  realloc(offset: number, size: number): number {
    checkOffset('realloc', offset)
    checkSize('realloc', size)
    const h = this.live()
    try {
      return h.realloc(offset, size)
    } finally {
      this.sync()
    }
  }

  /** Usable bytes of a live block (PERSIST_INVALID if offset is not one). */
  usableSize(offset: number): number {
    checkOffset('usableSize', offset)
    return this.live().usableSize(offset)
  }

  /** Root slot i (0..7): an offset stored with setRoot(), 0 if none. */
  root(i: number): number {
    checkRoot('root', i)
    return this.live().root(i)
  }

  /** Stores offset (0 or a live block) in root slot i so it can be found after reopening. */
  setRoot(i: number, offset: number): void {
    checkRoot('setRoot', i)
    checkOffset('setRoot', offset)
    this.live().setRoot(i, offset)
  }

  /** Counters, per-class occupancy and the fragmentation ratio. */
  stats(): HeapStats {
    return this.live().heapStats()
  }

  /** Problems found in the pager's and the heap's structures (empty when healthy). Never throws on a damaged file. */
  check(): string[] {
    const pagerProblems = this.pager.check()
    return [...pagerProblems, ...this.live().heapCheck()]
  }

  /** Offsets of every live block, in file order. */
  blocks(): Float64Array {
    return this.live().blocks()
  }

  /**
   * Runs fn in a transaction (see Pager.transaction): commits if it returns, rolls
   * back every alloc/free/write made in it if it throws. Nested calls use savepoints.
   */
  transaction<T>(fn: () => T): T {
    return this.pager.transaction(fn)
  }

  /** Aborts a transaction in flight and closes the store. Idempotent. */
  close(): void {
    this.pager.close()
  }

  /** True after close(). */
  get closed(): boolean {
    return this.pager.closed
  }
}

/**
 * Opens (or creates) a store and its heap. On first open the heap's meta page is
 * created in a transaction. Options are openPager()'s.
 * Errors: those of openPager(); PERSIST_CORRUPT / PERSIST_VERSION when the heap meta
 * page is damaged or newer; PERSIST_READONLY when a read-only store has no heap yet.
 */
export function openHeap(path: string, options?: HeapOptions): Heap {
  const o = validatePagerOptions(path, options)
  const handle = new native.HeapHandle(path, o)
  const heap = new Heap(handle)
  try {
    if (o.readonly) {
      if (!handle.heapInitialized())
        throw new PersistError(
          'PERSIST_READONLY',
          `${path} has no heap yet and is opened read-only: open it once writable to create the heap`,
        )
    } else {
      handle.heapInit() // creates the meta page, or validates it
    }
  } catch (e) {
    heap.close()
    throw e
  }
  return heap
}
