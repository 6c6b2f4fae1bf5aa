import { join } from 'node:path'
import { ALIGN, MAX_ALLOC, MAX_SMALL, openHeap, ROOT_COUNT } from '@persist/heap'
import { isPersistError, openPager, PAGE_SIZE, type PersistErrorCode } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const fresh = () => join(dir, `h${n++}.persist`)

function expectPersist(fn: () => unknown, code: PersistErrorCode, msg: RegExp): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(isPersistError(err, code), `expected ${code}, got ${String(err)}`).toBe(true)
  expect((err as Error).message).toMatch(msg)
}

describe('1. alloc / free / usableSize', () => {
  it('1.1 constants', () => {
    expect(ALIGN).toBe(16)
    expect(MAX_SMALL).toBe(32768)
    expect(MAX_ALLOC).toBe(2 ** 30 - 65536 - 64)
    expect(ROOT_COUNT).toBe(8)
  })
  it('1.2 blocks are 16-aligned, distinct, writable through mem, and survive reopen', () => {
    const f = fresh()
    const h = openHeap(f)
    const sizes = [1, 16, 17, 100, 1000, 4096, 32768, 32769, 100_000, 1_000_000]
    const offs = h.transaction(() =>
      sizes.map((s, i) => {
        const off = h.alloc(s)
        expect(off % ALIGN).toBe(0)
        expect(h.usableSize(off)).toBeGreaterThanOrEqual(s)
        h.pager.willWrite(off, s)
        h.mem.bytes(off, s).fill(i + 1)
        return off
      }),
    )
    expect(new Set(offs).size).toBe(offs.length)
    const sorted = [...offs].sort((a, b) => a - b)
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]
      expect(prev + h.usableSize(prev)).toBeLessThanOrEqual(sorted[i])
    }
    expect([...h.blocks()].sort((a, b) => a - b)).toEqual(sorted)
    expect(h.check()).toEqual([])
    h.close()
    const g = openHeap(f)
    g.transaction(() => {
      offs.forEach((off, i) => {
        expect(g.mem.bytes(off, sizes[i]).every((b) => b === i + 1)).toBe(true)
      })
    })
    const st = g.stats()
    expect(st.blocksLive).toBe(sizes.length)
    expect(st.largeBlocks).toBe(3)
    expect(st.bytesLive).toBe(offs.reduce((a, o) => a + g.usableSize(o), 0))
    for (const off of offs) g.free(off)
    expect(g.stats().bytesLive).toBe(0)
    expect(g.check()).toEqual([])
    g.close()
  })
  it('1.3 zero option fills the usable size with zeros', () => {
    const h = openHeap(fresh())
    const a = h.alloc(200)
    h.transaction(() => {
      h.pager.willWrite(a, 208)
      h.mem.bytes(a, 208).fill(0xff)
    })
    h.free(a)
    const b = h.alloc(200, { zero: true })
    expect(b).toBe(a) // the same slot comes back
    h.transaction(() => expect(h.mem.bytes(b, h.usableSize(b)).every((x) => x === 0)).toBe(true))
    h.close()
  })
  it('1.4 misuse throws TypeError/RangeError before native code', () => {
    const h = openHeap(fresh())
    expect(() => h.alloc('1' as unknown as number)).toThrow(TypeError)
    expect(() => h.alloc(0)).toThrow(RangeError)
    expect(() => h.alloc(1.5)).toThrow(RangeError)
    expect(() => h.alloc(-1)).toThrow(RangeError)
    expect(() => h.alloc(8, { zero: 1 as unknown as boolean })).toThrow(TypeError)
    expect(() => h.free(undefined as unknown as number)).toThrow(TypeError)
    expect(() => h.free(-16)).toThrow(RangeError)
    expect(() => h.realloc(16, 0)).toThrow(RangeError)
    expect(() => h.root(ROOT_COUNT)).toThrow(RangeError)
    expect(() => h.setRoot(0, 1.5)).toThrow(RangeError)
    expect(() => openHeap(42 as unknown as string)).toThrow(TypeError)
    expect(() => openHeap(fresh(), { bogus: 1 } as never)).toThrow(TypeError)
    h.close()
  })
  it('1.5 sizes above MAX_ALLOC are PERSIST_TOO_BIG', () => {
    const h = openHeap(fresh())
    expectPersist(() => h.alloc(MAX_ALLOC + 1), 'PERSIST_TOO_BIG', /largest block/)
    const a = h.alloc(10)
    expectPersist(() => h.realloc(a, MAX_ALLOC + 1), 'PERSIST_TOO_BIG', /largest block/)
    h.close()
  })
})

describe('2. invalid frees are PERSIST_INVALID, not corruption', () => {
  it('2.1 every kind of bad offset', () => {
    const h = openHeap(fresh())
    const a = h.alloc(48)
    const big = h.alloc(100_000)
    const metaOff = h.pager.slot(0) * PAGE_SIZE
    expectPersist(
      () => h.free(a + 8),
      'PERSIST_INVALID',
      /^free\(0x[0-9a-f]+\): not the start of a live block/,
    )
    expectPersist(() => h.free(a + 16), 'PERSIST_INVALID', /not the start of a live block/)
    expectPersist(() => h.free(2 ** 40), 'PERSIST_INVALID', /outside the file/)
    expectPersist(() => h.free(0), 'PERSIST_INVALID', /belongs to the pager/)
    expectPersist(() => h.free(3 * PAGE_SIZE), 'PERSIST_INVALID', /belongs to the pager/)
    expectPersist(() => h.free(metaOff), 'PERSIST_INVALID', /meta page/)
    expectPersist(() => h.free(big + PAGE_SIZE), 'PERSIST_INVALID', /inside the large block/)
    expectPersist(() => h.usableSize(a + 32), 'PERSIST_INVALID', /usable_size/)
    h.free(a)
    expectPersist(() => h.free(a), 'PERSIST_INVALID', /double free/)
    h.free(big)
    expectPersist(() => h.free(big), 'PERSIST_INVALID', /is free|double free/)
    // a free page beyond the last block
    const far = h.alloc(200_000)
    h.free(far)
    expectPersist(() => h.free(far), 'PERSIST_INVALID', /is free/)
    expect(h.check()).toEqual([])
    h.close()
  })
  it('2.2 a failed free inside a transaction leaves the transaction usable', () => {
    const h = openHeap(fresh())
    const a = h.alloc(32)
    h.transaction(() => {
      expect(() => h.free(a + 16)).toThrow()
      h.free(a)
    })
    expect(h.stats().blocksLive).toBe(0)
    h.close()
  })
})

describe('3. realloc', () => {
  it('3.1 keeps, grows in place, moves, and preserves contents', () => {
    const h = openHeap(fresh())
    h.transaction(() => {
      const a = h.alloc(100)
      h.pager.willWrite(a, 100)
      h.mem.bytes(a, 100).fill(7)
      expect(h.realloc(a, 110)).toBe(a)
      const b = h.realloc(a, 3000)
      expect(b).not.toBe(a)
      expect(h.mem.bytes(b, 100).every((x) => x === 7)).toBe(true)
      const c = h.realloc(b, 50_000)
      expect(h.mem.bytes(c, 100).every((x) => x === 7)).toBe(true)
      const d = h.realloc(c, 500_000) // the last run of the file: grows in place
      expect(d).toBe(c)
      expect(h.usableSize(d)).toBeGreaterThanOrEqual(500_000)
      expect(h.mem.bytes(d, 100).every((x) => x === 7)).toBe(true)
    })
    expect(h.check()).toEqual([])
    h.close()
  })
})

describe('4. roots and transactions', () => {
  it('4.1 roots persist across reopen; setRoot validates the offset', () => {
    const f = fresh()
    const h = openHeap(f)
    const a = h.alloc(64)
    h.setRoot(1, a)
    expectPersist(() => h.setRoot(2, a + 16), 'PERSIST_INVALID', /setRoot/)
    h.close()
    const g = openHeap(f)
    expect(g.root(1)).toBe(a)
    expect(g.root(0)).toBe(0)
    expect(g.usableSize(g.root(1))).toBe(64)
    g.close()
  })
  it('4.2 a throwing transaction rolls back its allocs and frees', () => {
    const h = openHeap(fresh())
    const keep = h.alloc(500)
    const before = h.stats()
    expect(() =>
      h.transaction(() => {
        for (let i = 0; i < 100; i++) h.alloc(1 + i * 37)
        h.free(keep)
        h.alloc(300_000)
        throw new Error('boom')
      }),
    ).toThrow('boom')
    const after = h.stats()
    expect(after.bytesLive).toBe(before.bytesLive)
    expect(after.blocksLive).toBe(before.blocksLive)
    expect([...h.blocks()]).toEqual([keep])
    expect(h.check()).toEqual([])
    h.close()
  })
  it('4.3 a mutation outside a transaction commits on its own (another handle sees it)', () => {
    const f = fresh()
    const h = openHeap(f)
    const a = h.alloc(40)
    const other = openHeap(f)
    expect(other.usableSize(a)).toBe(48)
    other.free(a)
    expectPersist(() => h.free(a), 'PERSIST_INVALID', /double free/)
    other.close()
    h.close()
  })
  it('4.4 the heap lives in a plain pager store; a read-only open needs an existing heap', () => {
    const f = fresh()
    openPager(f).close()
    expectPersist(() => openHeap(f, { readonly: true }), 'PERSIST_READONLY', /no heap yet/)
    const h = openHeap(f)
    const a = h.alloc(10)
    h.close()
    const r = openHeap(f, { readonly: true })
    expect(r.usableSize(a)).toBe(16)
    expect(r.check()).toEqual([])
    expect(() => r.alloc(10)).toThrow()
    r.close()
  })
  it('4.5 methods after close throw PERSIST_CLOSED', () => {
    const h = openHeap(fresh())
    h.close()
    expectPersist(() => h.alloc(1), 'PERSIST_CLOSED', /closed/)
    h.close()
  })
  it('4.6 a large block freed in its own transaction is reused at once; abort undoes it all', () => {
    const h = openHeap(fresh())
    const old = h.alloc(50_000)
    const pages = h.stats().totalPages
    expect(() =>
      h.transaction(() => {
        const a = h.alloc(50_000)
        h.pager.willWrite(a, 8)
        h.mem.setF64(a, 1.5)
        h.free(a)
        expect(h.alloc(50_000)).toBe(a) // the same run, before commit
        h.free(old) // live when the transaction began: not reusable before commit
        expect(h.alloc(50_000)).not.toBe(old)
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect([...h.blocks()]).toEqual([old])
    expect(h.stats().totalPages).toBe(pages)
    expect(h.check()).toEqual([])
    const b = h.transaction(() => {
      const a = h.alloc(50_000)
      h.free(a)
      return h.alloc(50_000)
    })
    expect([...h.blocks()].sort((x, y) => x - y)).toEqual([old, b].sort((x, y) => x - y))
    expect(h.check()).toEqual([])
    h.close()
  })
})

describe('5. stats', () => {
  it('5.1 per-class counts, slab pages and fragmentation', () => {
    const h = openHeap(fresh())
    h.transaction(() => {
      for (let i = 0; i < 1000; i++) h.alloc(64)
    })
    const st = h.stats()
    const c = st.classes.find((k) => k.blockSize === 64)!
    expect(c.live).toBe(1000)
    expect(c.capacity).toBe(c.slabs * c.slabCapacity)
    expect(c.capacity - c.live).toBeLessThan(c.slabCapacity)
    expect(st.bytesLive).toBe(64_000)
    expect(st.bytesFreeInSlabs).toBe((c.capacity - c.live) * 64)
    expect(st.slabPages).toBe(c.slabs * c.slabPages)
    expect(st.heapPages).toBe(1 + st.slabPages + st.largePages)
    expect(st.fragmentation).toBeCloseTo((st.heapPages * PAGE_SIZE) / st.bytesLive, 6)
    expect(st.slabPages).toBe(Math.ceil(1000 / c.slabCapacity) * c.slabPages) // no slab beyond need
    expect(st.fragmentation).toBeLessThan(1.2)
    h.close()
  })
})
