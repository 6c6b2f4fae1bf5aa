import { join } from 'node:path'
import { openPager, PAGE_SIZE } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()

describe('10. Mem accessors', () => {
  const p = openPager(join(dir, 'mem.persist'))
  const base = p.transaction(() => p.allocPages(2)) * PAGE_SIZE

  it('10.1 integers and floats round-trip little-endian', () => {
    p.transaction(() => {
      const m = p.mem
      m.setU8(base, 0xff)
      m.setU16(base + 2, 0xbeef)
      m.setU32(base + 4, 0xdeadbeef)
      m.setI32(base + 8, -123456)
      m.setF64(base + 16, Math.PI)
      m.setU64(base + 24, 2 ** 53 - 1)
      m.setI64(base + 32, -(2 ** 50) - 3)
      m.setI64(base + 40, 7)
      expect(m.u8(base)).toBe(0xff)
      expect(m.u16(base + 2)).toBe(0xbeef)
      expect([...m.bytes(base + 2, 2)]).toEqual([0xef, 0xbe])
      expect(m.u32(base + 4)).toBe(0xdeadbeef)
      expect(m.i32(base + 8)).toBe(-123456)
      expect(m.f64(base + 16)).toBe(Math.PI)
      expect(m.u64(base + 24)).toBe(2 ** 53 - 1)
      expect(m.i64(base + 32)).toBe(-(2 ** 50) - 3)
      expect(m.i64(base + 40)).toBe(7)
      expect(m.u64(base + 40)).toBe(7)
    })
  })

  it('10.2 strings: latin1 and UTF-16 in and out', () => {
    p.transaction(() => {
      const m = p.mem
      expect(m.writeLatin1(base + 100, 'café olé')).toBe(8)
      expect(m.latin1(base + 100, 8)).toBe('café olé')
      expect(m.writeUcs2(base + 200, 'h€llo 😀')).toBe(16)
      expect(m.ucs2(base + 200, 16)).toBe('h€llo 😀')
    })
  })

  it('10.3 copyIn / copyOut copy; bytes() is a live view', () => {
    p.transaction(() => {
      const m = p.mem
      m.copyIn(base + 300, new Uint8Array([1, 2, 3]))
      const copy = m.copyOut(base + 300, 3)
      const view = m.bytes(base + 300, 3)
      m.setU8(base + 300, 9)
      expect([...copy]).toEqual([1, 2, 3])
      expect([...view]).toEqual([9, 2, 3])
      expect(copy.buffer).not.toBe(view.buffer)
    })
  })

  it('10.4 accesses past the mapping throw RangeError', () => {
    const m = p.mem
    expect(() => m.u32(m.size - 2)).toThrow(RangeError)
    expect(() => m.u8(m.size)).toThrow(RangeError)
    expect(() => m.bytes(m.size - 1, 2)).toThrow(RangeError)
    expect(() => m.setU64(-8, 1)).toThrow(RangeError)
  })
})
