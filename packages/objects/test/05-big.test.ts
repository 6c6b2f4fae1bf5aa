import type { Objects } from '@persist/objects'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshPath, off, open, tempDir, tx, valueSlotOf } from './helpers.js'

const dir = tempDir()
let o: Objects
let path: string
beforeAll(() => {
  path = freshPath(dir)
  o = open(path)
})
afterAll(() => o.close())

describe('big values', () => {
  it('1. a 64 MiB latin1 string and a 32 Mi-unit UTF-16 string round-trip through close/reopen', () => {
    const s1 = 'abcdefgh'.repeat(8 * 1024 * 1024) // 64 MiB of latin1
    const s2 = `日本${'😀'.repeat(16 * 1024 * 1024 - 1)}` // 32 Mi code units = 64 MiB of UTF-16
    tx(o, () => {
      o.dictSet(o.rootOff, 'huge1', s1)
      o.dictSet(o.rootOff, 'huge2', s2)
    })
    o.close()
    o = open(path)
    const [g1, g2] = tx(o, () => [o.dictGet(o.rootOff, 'huge1'), o.dictGet(o.rootOff, 'huge2')])
    expect(g1 === s1).toBe(true)
    expect(g2 === s2).toBe(true)
    // editing the start of the huge string rewrites it in its own block (no other block moves)
    const block = tx(o, () => o.pager.mem.u64(valueSlotOf(o, o.rootOff, 'huge1') + 8))
    tx(o, () => o.dictSet(o.rootOff, 'huge1', `Foobar${s1.slice(6)}`))
    expect(tx(o, () => o.pager.mem.u64(valueSlotOf(o, o.rootOff, 'huge1') + 8))).toBe(block)
    expect(tx(o, () => (o.dictGet(o.rootOff, 'huge1') as string).slice(0, 10))).toBe('Foobarghab')
    tx(o, () => {
      o.dictDelete(o.rootOff, 'huge1')
      o.dictDelete(o.rootOff, 'huge2')
    })
    expect(o.check()).toEqual([])
  })

  it('2. a list of 10^6 items: push, index, pop, sort, survive reopen', () => {
    const N = 1_000_000
    tx(o, () => o.dictSet(o.rootOff, 'list', []))
    const l = tx(o, () => off(o.dictGet(o.rootOff, 'list')))
    tx(o, () => {
      for (let i = 0; i < N; i++) o.listPush(l, (i * 7919) % N)
    })
    o.close()
    o = open(path)
    o.begin()
    expect(o.listLength(l)).toBe(N)
    expect(o.listGet(l, 0)).toBe(0)
    expect(o.listGet(l, 1)).toBe(7919)
    expect(o.listGet(l, N - 1)).toBe(((N - 1) * 7919) % N)
    o.listSort(l, (a, b) => (a as number) - (b as number))
    o.commit()
    o.begin()
    for (const i of [0, 1, 2, 12345, N - 1]) expect(o.listGet(l, i)).toBe(i)
    expect(o.listPop(l)).toBe(N - 1)
    expect(o.listLength(l)).toBe(N - 1)
    o.commit()
    expect(o.check()).toEqual([])
    tx(o, () => o.dictDelete(o.rootOff, 'list'))
    expect(o.check()).toEqual([])
  })

  it('3. values nested 100,000 deep are copied in, snapshotted, freed and validated without recursion', () => {
    let v: unknown = { end: true }
    for (let i = 0; i < 100_000; i++) v = i % 2 ? { next: v } : [v]
    tx(o, () => o.dictSet(o.rootOff, 'deep', v))
    let snap = tx(o, () => o.toJSRecord(off(o.dictGet(o.rootOff, 'deep'))))
    let depth = 0
    while (snap !== null && typeof snap === 'object' && !('end' in snap)) {
      snap = Array.isArray(snap) ? snap[0] : (snap as { next: unknown }).next
      depth++
    }
    expect(depth).toBe(100_000)
    let bad: unknown = [() => 1]
    for (let i = 0; i < 100_000; i++) bad = { next: bad }
    expect(() => tx(o, () => o.dictSet(o.rootOff, 'bad', bad, 'root'))).toThrow(
      /^root\.bad(\.next)+\[0\]: functions cannot be stored$/,
    )
    tx(o, () => o.dictDelete(o.rootOff, 'deep'))
    expect(o.check()).toEqual([])
  })
})
