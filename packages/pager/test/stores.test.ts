import { statSync } from 'node:fs'
import { join } from 'node:path'
import { openPager, PAGE_SIZE, WINDOW_STEP } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()

describe('8. many stores, big stores, views', () => {
  it('8.1 120 stores open at once in one process (256 GiB reservation each)', () => {
    const pagers = Array.from({ length: 120 }, (_, i) => openPager(join(dir, `m${i}.persist`)))
    pagers.forEach((p, i) => {
      p.transaction(() => {
        const pg = p.allocPages(1)
        p.mem.setU64(pg * PAGE_SIZE, i * 1000)
        p.setSlot(1, pg)
      })
    })
    pagers.forEach((p, i) => {
      p.begin()
      expect(p.mem.u64(p.slot(1) * PAGE_SIZE)).toBe(i * 1000)
      p.commit()
    })
    for (const p of pagers) p.close()
  })

  it('8.2 the same file opened twice in one process shares the data', () => {
    const f = join(dir, 'twice.persist')
    const a = openPager(f)
    const b = openPager(f)
    const pg = a.transaction(() => a.allocPages(1))
    a.transaction(() => a.mem.setU32(pg * PAGE_SIZE, 0xabcdef))
    b.begin()
    expect(b.mem.u32(pg * PAGE_SIZE)).toBe(0xabcdef)
    b.commit()
    a.close()
    b.transaction(() => b.mem.setU32(pg * PAGE_SIZE, 5))
    b.close()
  })

  it('8.3 a view kept after close is detached (empty) instead of crashing; the file is untouched', () => {
    const f = join(dir, 'views.persist')
    const p = openPager(f)
    const pg = p.transaction(() => {
      const pg = p.allocPages(1)
      p.mem.bytes(pg * PAGE_SIZE, 4).set([1, 2, 3, 4])
      return pg
    })
    p.begin()
    const view = p.mem.bytes(pg * PAGE_SIZE, 4)
    p.commit()
    p.close()
    expect(view.length).toBe(0) // detached before the mapping went away
    view[0] = 9 // no effect, no fault
    const q = openPager(f)
    q.begin()
    expect([...q.mem.bytes(pg * PAGE_SIZE, 4)]).toEqual([1, 2, 3, 4])
    q.commit()
    q.close()
  })

  it('8.5 800 open/close cycles do not exhaust the address space (256 GiB reserved each time)', () => {
    const f = join(dir, 'cycles.persist')
    for (let i = 0; i < 800; i++) {
      const p = openPager(f)
      p.transaction(() => p.setSlot(1, i))
      p.close()
    }
    const p = openPager(f)
    expect(p.slot(1)).toBe(799)
    p.close()
  })

  it('8.4 a store past 4 GiB is reachable through overlapping windows', () => {
    const f = join(dir, 'big.persist')
    const p = openPager(f)
    const run = 262_000 // pages per run (< 1 GiB map span)
    const firsts = p.transaction(() => [0, 1, 2, 3, 4].map(() => p.allocPages(run)))
    const last = firsts[4] + run - 1
    const end = (last + 1) * PAGE_SIZE
    expect(end).toBeGreaterThan(2 ** 32 + 2 ** 28)
    expect(statSync(f).size).toBeGreaterThanOrEqual(end)
    const offs = [
      firsts[0] * PAGE_SIZE, // window 0
      firsts[3] * PAGE_SIZE + 8, // 3 GiB: window 0 fast path (window 1 overlaps)
      firsts[4] * PAGE_SIZE + 8, // past 4 GiB: window 2
      end - 8,
    ]
    expect(offs[2]).toBeGreaterThan(WINDOW_STEP * 2)
    p.transaction(() => {
      offs.forEach((o, i) => {
        p.willWrite(o, 8)
        p.mem.setU64(o, 1e12 + i)
      })
      p.mem.writeLatin1(end - 100, 'far away')
      p.mem.writeUcs2(end - 200, 'Ünïcödé')
    })
    expect(p.check()).toEqual([])
    p.close()
    const q = openPager(f)
    q.begin()
    expect(q.mem.size).toBe(q.stats().pageCount * PAGE_SIZE)
    for (const [i, o] of offs.entries()) expect(q.mem.u64(o)).toBe(1e12 + i)
    expect(q.mem.latin1(end - 100, 8)).toBe('far away')
    expect(q.mem.ucs2(end - 200, 14)).toBe('Ünïcödé')
    expect(() => q.mem.u64(q.mem.size - 4)).toThrow(RangeError)
    q.commit()
    q.close()
  })
})
