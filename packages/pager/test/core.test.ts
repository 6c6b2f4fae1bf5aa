import { statSync } from 'node:fs'
import { join } from 'node:path'
import { BEGIN_CHANGED, openPager, PAGE_SIZE, PersistError } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const fresh = () => join(dir, `s${n++}.persist`)

describe('1. open and create', () => {
  it('1.1 creates a store with the documented initial layout', () => {
    const p = openPager(fresh())
    const s = p.stats()
    expect(s.pageCount).toBe(33)
    expect(s.freePages).toBe(0)
    expect(s.txid).toBe(0)
    expect(s.fileBytes).toBe(33 * PAGE_SIZE)
    expect(p.check()).toEqual([])
    // magic "\x89PERSIST" at byte 0
    p.begin()
    expect(p.mem.u8(0)).toBe(0x89)
    expect(p.mem.latin1(1, 7)).toBe('PERSIST')
    p.commit()
    p.close()
  })
  it('1.2 reopens and sees committed data', () => {
    const f = fresh()
    const p = openPager(f)
    const page = p.transaction(() => {
      const pg = p.allocPages(2)
      p.willWrite(pg * PAGE_SIZE, 16)
      p.mem.setU64(pg * PAGE_SIZE, 123456789012)
      p.mem.writeLatin1(pg * PAGE_SIZE + 8, 'hello!!!')
      p.setSlot(1, pg)
      return pg
    })
    p.close()
    const q = openPager(f)
    q.begin()
    expect(q.slot(1)).toBe(page)
    expect(q.mem.u64(page * PAGE_SIZE)).toBe(123456789012)
    expect(q.mem.latin1(page * PAGE_SIZE + 8, 8)).toBe('hello!!!')
    expect(q.runLength(page)).toBe(2)
    q.commit()
    expect(q.txid).toBe(1)
    q.close()
  })
})

describe('2. transactions', () => {
  it('2.1 abort restores journaled bytes exactly', () => {
    const p = openPager(fresh())
    const pg = p.transaction(() => {
      const pg = p.allocPages(1)
      for (let i = 0; i < 512; i++) p.mem.setU64(pg * PAGE_SIZE + i * 8, i)
      return pg
    })
    p.begin()
    p.willWrite(pg * PAGE_SIZE + 100, 1000)
    for (let i = 100; i < 1100; i++) p.mem.setU8(pg * PAGE_SIZE + i, 0xee)
    p.setSlot(2, 77)
    p.abort()
    p.begin()
    for (let i = 0; i < 512; i++) expect(p.mem.u64(pg * PAGE_SIZE + i * 8)).toBe(i)
    expect(p.slot(2)).toBe(0)
    p.commit()
    expect(p.check()).toEqual([])
    p.close()
  })
  it('2.2 abort undoes allocations and growth; frees happen at commit', () => {
    const p = openPager(fresh())
    const before = p.stats()
    p.begin()
    const a = p.allocPages(300)
    expect(p.stats().pageCount).toBeGreaterThan(before.pageCount)
    p.abort()
    expect(p.stats().pageCount).toBe(before.pageCount)
    expect(p.stats().freePages).toBe(0)
    expect(p.check()).toEqual([])
    const b = p.transaction(() => p.allocPages(300))
    expect(b).toBe(a)
    const free0 = p.stats().freePages
    p.transaction(() => {
      p.freePages(b)
      expect(p.runLength(b)).toBe(300) // deferred until commit
    })
    expect(p.stats().freePages).toBe(free0 + 300)
    expect(p.transaction(() => p.allocPages(10))).toBe(b) // first fit reuses
    expect(p.check()).toEqual([])
    p.close()
  })
  it('2.3 nested transaction(fn) joins via savepoint; inner throw undoes inner part only', () => {
    const p = openPager(fresh())
    const pg = p.transaction(() => p.allocPages(1))
    const off = pg * PAGE_SIZE
    p.transaction(() => {
      p.willWrite(off, 8)
      p.mem.setU64(off, 1)
      expect(() =>
        p.transaction(() => {
          p.willWrite(off, 16)
          p.mem.setU64(off, 2)
          p.mem.setU64(off + 8, 2)
          throw new Error('inner')
        }),
      ).toThrow('inner')
      expect(p.mem.u64(off)).toBe(1)
      expect(p.mem.u64(off + 8)).toBe(0)
    })
    p.begin()
    expect(p.mem.u64(off)).toBe(1)
    p.commit()
    p.close()
  })
  it('2.4 a transaction fn returning a promise aborts with PERSIST_TXN', () => {
    const p = openPager(fresh())
    const pg = p.transaction(() => p.allocPages(1))
    let err: unknown
    try {
      p.transaction(async () => {
        p.willWrite(pg * PAGE_SIZE, 8)
        p.mem.setU64(pg * PAGE_SIZE, 9)
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PersistError)
    expect((err as PersistError).code).toBe('PERSIST_TXN')
    expect((err as PersistError).message).toMatch(/cannot span await/)
    expect(p.inTransaction).toBe(false)
    p.begin()
    expect(p.mem.u64(pg * PAGE_SIZE)).toBe(0)
    p.commit()
    p.close()
  })
  it('2.5 begin reports CHANGED after another handle committed', () => {
    const f = fresh()
    const a = openPager(f)
    const b = openPager(f)
    a.begin()
    a.commit()
    b.begin()
    b.commit()
    a.transaction(() => a.setSlot(3, 1))
    expect(b.begin() & BEGIN_CHANGED).toBe(BEGIN_CHANGED)
    expect(b.slot(3)).toBe(1)
    b.commit()
    a.close()
    b.close()
  })
})

describe('2b. runs and savepoints from JS', () => {
  it('2.6 extendRun grows in place when the next pages are free, also at the end of the store', () => {
    const p = openPager(fresh())
    const [a, b] = p.transaction(() => [p.allocPages(2), p.allocPages(3)])
    p.transaction(() => p.freePages(b))
    p.begin()
    expect(p.extendRun(a, 5)).toBe(true) // takes b's old pages
    expect(p.runLength(a)).toBe(5)
    expect(p.runStart(a + 4)).toBe(a)
    expect(p.runStart(a + 5)).toBe(-1)
    expect(p.extendRun(a, 400)).toBe(true) // the run ends the used part: the store grows
    expect(p.runLength(a)).toBe(400)
    expect(p.stats().pageCount).toBeGreaterThanOrEqual(a + 400)
    p.mem.setU8((a + 399) * PAGE_SIZE, 1)
    const c = p.allocPages(1)
    expect(p.extendRun(a, 401)).toBe(c !== a + 400) // false when c took the next page
    p.commit()
    expect(p.check()).toEqual([])
    p.close()
  })
  it('2.7 savepoint/rollbackTo undo later writes, allocations and frees; foreign tokens are refused', () => {
    const p = openPager(fresh())
    const a = p.transaction(() => p.allocPages(1))
    const off = a * PAGE_SIZE
    p.begin()
    p.willWrite(off, 8)
    p.mem.setU64(off, 1)
    const sp = p.savepoint()
    p.willWrite(off, 8)
    p.mem.setU64(off, 2)
    const b = p.allocPages(7)
    p.freePages(a)
    p.setSlot(6, 66)
    p.rollbackTo(sp)
    expect(p.mem.u64(off)).toBe(1)
    expect(p.runStart(b)).toBe(-1)
    expect(p.slot(6)).toBe(0)
    expect(p.runLength(a)).toBe(1)
    expect(() => p.rollbackTo(sp + 1000)).toThrow(PersistError)
    p.commit()
    expect(p.runLength(a)).toBe(1) // the free was undone
    p.begin()
    expect(p.mem.u64(off)).toBe(1)
    p.commit()
    expect(p.check()).toEqual([])
    p.close()
  })
})

describe('3. growth', () => {
  it('3.1 large allocation grows the file and the mapping', () => {
    const f = fresh()
    const p = openPager(f)
    const pg = p.transaction(() => p.allocPages(5000))
    expect(statSync(f).size).toBeGreaterThanOrEqual((pg + 5000) * PAGE_SIZE)
    p.transaction(() => {
      p.mem.setU32((pg + 4999) * PAGE_SIZE, 0xdeadbeef)
    })
    expect(p.mem.size).toBeGreaterThanOrEqual((pg + 5000) * PAGE_SIZE)
    expect(p.check()).toEqual([])
    p.close()
  })
})
