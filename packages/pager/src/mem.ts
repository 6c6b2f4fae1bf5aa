import { PersistError } from './errors.js'

/** Bytes between the starts of two consecutive windows (2 GiB). */
export const WINDOW_STEP = 2 ** 31
const TWO32 = 4294967296

interface BufferWithSlices extends Buffer {
  latin1Slice(start: number, end: number): string
  ucs2Slice(start: number, end: number): string
  latin1Write(s: string, offset: number, length?: number): number
  ucs2Write(s: string, offset: number, length?: number): number
}

/**
 * Little-endian accessors over the mapped store, used by every layer above the pager.
 *
 * The mapping is exposed as "windows": window k starts at byte k * 2^31 and is at most
 * 2^32 bytes long (Node 20's limit for one ArrayBuffer), so windows overlap by 2 GiB
 * and any record of at most 2 GiB lies wholly inside one window. Offsets are byte
 * offsets from the start of the file. Accesses past the mapping throw RangeError.
 *
 * The views are never handed out: `bytes()` returns a view for immediate use by a
 * layer; copy before giving bytes to user code. After the store is closed every
 * accessor throws PersistError PERSIST_CLOSED.
 */
export class Mem {
  /** Bytes currently mapped (may grow; never shrinks while open). */
  size = 0
  // Window 0 fast path: most stores are < 4 GiB and every access lands here.
  private dv0: DataView = new DataView(new ArrayBuffer(0))
  private b0: BufferWithSlices = Buffer.alloc(0) as BufferWithSlices
  private len0 = 0
  private dvs: DataView[] = []
  private bufs: BufferWithSlices[] = []
  private isClosed = false
  // Set by win(): the local offset inside the window it returned.
  private local = 0

  /** @internal Replaces the windows (after open, growth or close). */
  _setWindows(windows: ArrayBuffer[], size: number): void {
    this.dvs = windows.map((ab) => new DataView(ab))
    this.bufs = windows.map((ab) => Buffer.from(ab, 0, ab.byteLength) as BufferWithSlices)
    this.size = size
    if (windows.length > 0) {
      this.dv0 = this.dvs[0]
      this.b0 = this.bufs[0]
      this.len0 = windows[0].byteLength
    } else {
      this.dv0 = new DataView(new ArrayBuffer(0))
      this.b0 = Buffer.alloc(0) as BufferWithSlices
      this.len0 = 0
    }
  }

  /** @internal */
  _close(): void {
    this._setWindows([], 0)
    this.isClosed = true
  }

  // Slow path: the window holding [off, off+len); sets this.local.
  private win(off: number, len: number): number {
    if (this.isClosed)
      throw new PersistError('PERSIST_CLOSED', 'the store is closed; open it again to use it')
    if (!(off >= 0) || off + len > this.size || len > WINDOW_STEP) {
      throw new RangeError(`offset ${off} (+${len} bytes) is outside the store (${this.size} bytes mapped)`)
    }
    const w = Math.floor(off / WINDOW_STEP)
    this.local = off - w * WINDOW_STEP
    return w
  }

  u8(off: number): number {
    if (off < this.len0) return this.dv0.getUint8(off)
    const w = this.win(off, 1)
    return this.dvs[w].getUint8(this.local)
  }
  setU8(off: number, v: number): void {
    if (off < this.len0) {
      this.dv0.setUint8(off, v)
      return
    }
    const w = this.win(off, 1)
    this.dvs[w].setUint8(this.local, v)
  }
  u16(off: number): number {
    if (off + 2 <= this.len0) return this.dv0.getUint16(off, true)
    const w = this.win(off, 2)
    return this.dvs[w].getUint16(this.local, true)
  }
  setU16(off: number, v: number): void {
    if (off + 2 <= this.len0) {
      this.dv0.setUint16(off, v, true)
      return
    }
    const w = this.win(off, 2)
    this.dvs[w].setUint16(this.local, v, true)
  }
  u32(off: number): number {
    if (off + 4 <= this.len0) return this.dv0.getUint32(off, true)
    const w = this.win(off, 4)
    return this.dvs[w].getUint32(this.local, true)
  }
  setU32(off: number, v: number): void {
    if (off + 4 <= this.len0) {
      this.dv0.setUint32(off, v, true)
      return
    }
    const w = this.win(off, 4)
    this.dvs[w].setUint32(this.local, v, true)
  }
  i32(off: number): number {
    if (off + 4 <= this.len0) return this.dv0.getInt32(off, true)
    const w = this.win(off, 4)
    return this.dvs[w].getInt32(this.local, true)
  }
  setI32(off: number, v: number): void {
    if (off + 4 <= this.len0) {
      this.dv0.setInt32(off, v, true)
      return
    }
    const w = this.win(off, 4)
    this.dvs[w].setInt32(this.local, v, true)
  }
  f64(off: number): number {
    if (off + 8 <= this.len0) return this.dv0.getFloat64(off, true)
    const w = this.win(off, 8)
    return this.dvs[w].getFloat64(this.local, true)
  }
  setF64(off: number, v: number): void {
    if (off + 8 <= this.len0) {
      this.dv0.setFloat64(off, v, true)
      return
    }
    const w = this.win(off, 8)
    this.dvs[w].setFloat64(this.local, v, true)
  }
  /** Unsigned 64-bit value as a number (exact below 2^53). */
  u64(off: number): number {
    if (off + 8 <= this.len0) return this.dv0.getUint32(off, true) + this.dv0.getUint32(off + 4, true) * TWO32
    const w = this.win(off, 8)
    const dv = this.dvs[w]
    return dv.getUint32(this.local, true) + dv.getUint32(this.local + 4, true) * TWO32
  }
  /** Stores a non-negative integer below 2^53 as an unsigned 64-bit value. */
  setU64(off: number, v: number): void {
    const lo = v >>> 0
    const hi = Math.floor(v / TWO32) >>> 0
    if (off + 8 <= this.len0) {
      this.dv0.setUint32(off, lo, true)
      this.dv0.setUint32(off + 4, hi, true)
      return
    }
    const w = this.win(off, 8)
    const dv = this.dvs[w]
    dv.setUint32(this.local, lo, true)
    dv.setUint32(this.local + 4, hi, true)
  }
  /** Signed 64-bit value as a number (exact within ±2^53). */
  i64(off: number): number {
    if (off + 8 <= this.len0) return this.dv0.getUint32(off, true) + this.dv0.getInt32(off + 4, true) * TWO32
    const w = this.win(off, 8)
    const dv = this.dvs[w]
    return dv.getUint32(this.local, true) + dv.getInt32(this.local + 4, true) * TWO32
  }
  /** Stores an integer within ±2^53 as a signed 64-bit value. */
  setI64(off: number, v: number): void {
    const lo = v >>> 0
    const hi = Math.floor(v / TWO32) | 0
    if (off + 8 <= this.len0) {
      this.dv0.setUint32(off, lo, true)
      this.dv0.setInt32(off + 4, hi, true)
      return
    }
    const w = this.win(off, 8)
    const dv = this.dvs[w]
    dv.setUint32(this.local, lo, true)
    dv.setInt32(this.local + 4, hi, true)
  }

  /** A view of [off, off+len) of the mapping (no copy). Do not hand it to user code. */
  bytes(off: number, len: number): Uint8Array {
    if (off + len <= this.len0 && off >= 0 && len >= 0) return this.b0.subarray(off, off + len)
    const w = this.win(off, len)
    return this.bufs[w].subarray(this.local, this.local + len)
  }
  /** Copies src into the mapping at off. */
  copyIn(off: number, src: Uint8Array): void {
    this.bytes(off, src.length).set(src)
  }
  /** A copy of [off, off+len) (safe to hand to user code). */
  copyOut(off: number, len: number): Uint8Array {
    return Uint8Array.prototype.slice.call(this.bytes(off, len))
  }
  /** Reads len bytes as Latin-1 (one byte per char). */
  latin1(off: number, len: number): string {
    if (off + len <= this.len0 && off >= 0) return this.b0.latin1Slice(off, off + len)
    const w = this.win(off, len)
    return this.bufs[w].latin1Slice(this.local, this.local + len)
  }
  /** Writes str (every char < 256) as Latin-1; returns the bytes written (str.length). */
  writeLatin1(off: number, str: string): number {
    const len = str.length
    if (off + len <= this.len0 && off >= 0) return this.b0.latin1Write(str, off, len)
    const w = this.win(off, len)
    return this.bufs[w].latin1Write(str, this.local, len)
  }
  /** Reads nbytes (even) as UTF-16LE. */
  ucs2(off: number, nbytes: number): string {
    if (off + nbytes <= this.len0 && off >= 0) return this.b0.ucs2Slice(off, off + nbytes)
    const w = this.win(off, nbytes)
    return this.bufs[w].ucs2Slice(this.local, this.local + nbytes)
  }
  /** Writes str as UTF-16LE; returns the bytes written (2 * str.length). */
  writeUcs2(off: number, str: string): number {
    const len = str.length * 2
    if (off + len <= this.len0 && off >= 0) return this.b0.ucs2Write(str, off, len)
    const w = this.win(off, len)
    return this.bufs[w].ucs2Write(str, this.local, len)
  }
}
