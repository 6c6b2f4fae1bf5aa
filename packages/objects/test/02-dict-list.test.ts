import { format, type Objects } from '@persist/objects'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshPath, off, open, tempDir, tx } from './helpers.js'

const dir = tempDir()
let o: Objects
beforeAll(() => {
  o = open(freshPath(dir))
})
afterAll(() => o.close())

function newList(key: string, items: unknown[] = []): number {
  return tx(o, () => {
    o.dictSet(o.rootOff, key, items)
    return off(o.dictGet(o.rootOff, key))
  })
}
function newDict(key: string, v: object = {}): number {
  return tx(o, () => {
    o.dictSet(o.rootOff, key, v)
    return off(o.dictGet(o.rootOff, key))
  })
}

describe('1. dicts', () => {
  it('1.1 thousands of keys: insertion order, get/has/size, delete, re-insert at the end', () => {
    const d = newDict('big')
    const model = new Map<string, unknown>()
    o.begin()
    for (let i = 0; i < 3000; i++) {
      const k = i % 3 === 0 ? `key ${i} with a longer name` : i % 3 === 1 ? `k${i}` : `日${i}`
      o.dictSet(d, k, i)
      model.set(k, i)
    }
    o.commit()
    o.begin()
    expect(o.dictSize(d)).toBe(3000)
    expect(o.dictKeys(d)).toEqual([...model.keys()])
    for (const [k, v] of model) expect(o.dictGet(d, k)).toBe(v)
    expect(o.dictGet(d, 'missing')).toBe(undefined)
    expect(o.dictHas(d, 'missing')).toBe(false)
    // delete two thirds, in an order unrelated to insertion
    let n = 0
    for (const k of [...model.keys()]) {
      if (n++ % 3 !== 0) {
        expect(o.dictDelete(d, k)).toBe(true)
        model.delete(k)
      }
    }
    expect(o.dictDelete(d, 'missing')).toBe(false)
    o.dictSet(d, 'k1', 'back') // deleted before: goes to the end
    model.set('k1', 'back')
    o.commit()
    expect(tx(o, () => o.dictKeys(d))).toEqual([...model.keys()])
    expect(tx(o, () => o.dictSize(d))).toBe(model.size)
    expect(tx(o, () => o.dictEntries(d))).toEqual([...model.entries()])
    expect(o.check()).toEqual([])
  })

  it('1.2 the table shrinks when most keys are gone and drops its arrays when empty', () => {
    const d = newDict('shrink')
    tx(o, () => {
      for (let i = 0; i < 1000; i++) o.dictSet(d, `k${i}`, i)
    })
    const cap = () => tx(o, () => o.pager.mem.u32(d + format.DC_CAP))
    expect(cap()).toBeGreaterThanOrEqual(1000)
    tx(o, () => {
      for (let i = 0; i < 990; i++) o.dictDelete(d, `k${i}`)
    })
    expect(cap()).toBeLessThanOrEqual(64)
    expect(tx(o, () => o.dictKeys(d))).toEqual(Array.from({ length: 10 }, (_, i) => `k${990 + i}`))
    tx(o, () => {
      for (let i = 990; i < 1000; i++) o.dictDelete(d, `k${i}`)
    })
    expect(cap()).toBe(0)
    expect(tx(o, () => o.dictSize(d))).toBe(0)
    expect(o.check()).toEqual([])
  })

  it('1.3 repeated set/delete of one key does not grow the table without bound', () => {
    const d = newDict('churn', { keep: 1 })
    tx(o, () => {
      for (let i = 0; i < 5000; i++) {
        o.dictSet(d, 'x', i)
        o.dictDelete(d, 'x')
      }
    })
    expect(tx(o, () => o.pager.mem.u32(d + format.DC_CAP))).toBeLessThanOrEqual(8)
    expect(o.check()).toEqual([])
  })

  it('1.4 special keys: empty, __proto__, constructor, unicode, lone surrogates', () => {
    const d = newDict('special')
    const keys = [
      '',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      '😀',
      '\uD800',
      '\uDC00x',
      'a'.repeat(1000),
    ]
    tx(o, () => {
      for (const [i, k] of keys.entries()) o.dictSet(d, k, i)
    })
    expect(tx(o, () => o.dictKeys(d))).toEqual(keys)
    for (const [i, k] of keys.entries()) expect(tx(o, () => o.dictGet(d, k))).toBe(i)
    const snap = tx(o, () => o.toJSRecord(d)) as Record<string, unknown>
    expect(Object.getPrototypeOf(snap)).toBe(Object.prototype)
    expect(Object.keys(snap).sort()).toEqual([...keys].sort())
    expect(snap.__proto__).toBe(1)
  })

  it('1.5 misuse: a list offset where a dict is expected, non-string keys', () => {
    const l = newList('notadict')
    o.begin()
    expect(() => o.dictGet(l, 'x')).toThrow(/is a list, not a dict/)
    expect(() => o.dictSet(o.rootOff, Symbol('s') as unknown as string, 1)).toThrow(TypeError)
    o.abort()
  })
})

describe('2. lists behave like arrays', () => {
  it('2.1 push/pop/get/set/setLength', () => {
    const l = newList('l1', [1, 2])
    const m: unknown[] = [1, 2]
    o.begin()
    expect(o.listPush(l, 3, 'four', { five: 5 })).toBe(5)
    m.push(3, 'four', { five: 5 })
    expect(o.listGet(l, 1)).toBe(2)
    expect(o.listGet(l, 99)).toBe(undefined)
    expect(o.listGet(l, -1)).toBe(undefined)
    expect(o.listGet(l, 1.5)).toBe(undefined)
    o.listSet(l, 7, 'eight') // extends with undefined
    m[5] = undefined
    m[6] = undefined
    m[7] = 'eight'
    expect(o.listLength(l)).toBe(8)
    expect(o.toJSRecord(l)).toEqual(m)
    expect(o.listPop(l)).toBe('eight')
    m.pop()
    o.listSetLength(l, 3)
    m.length = 3
    o.listSetLength(l, 5)
    m.push(undefined, undefined)
    o.commit()
    expect(tx(o, () => o.toJSRecord(l))).toEqual(m)
    expect(() => tx(o, () => o.listSet(l, -1, 1))).toThrow(RangeError)
    expect(() => tx(o, () => o.listSetLength(l, 1.5))).toThrow(RangeError)
    expect(o.check()).toEqual([])
  })

  it('2.2 splice matches Array.prototype.splice for many argument shapes', () => {
    const starts = [-10, -3, -1, 0, 1, 2, 5, 6, 100]
    const counts = [0, 1, 2, 3, 10, -1]
    const inserts = [[], ['x'], ['x', 'y', 'z'], [{ d: 1 }, [2]]]
    let n = 0
    for (const st of starts)
      for (const dc of counts)
        for (const ins of inserts) {
          const base = [0, 'one', 2.5, { three: 3 }, [4], 'five-five-five-five']
          const l = newList(`sp${n++ % 4}`, base)
          const m = structuredClone(base)
          const removedModel = m.splice(st, dc, ...structuredClone(ins))
          const removed = tx(o, () => o.listSplice(l, st, dc, ins).map((v) => o.toJS(v)))
          expect(removed).toEqual(removedModel)
          expect(tx(o, () => o.toJSRecord(l))).toEqual(m)
        }
    expect(o.check()).toEqual([])
  })

  it('2.3 sort: default string order, undefined last, stable with a comparator, NaN results as 0', () => {
    const cases: unknown[][] = [
      [10, 9, 1, 100, undefined, 'b', 'a', null, true, 2.5, -1],
      ['b', 'a', 'c', 'B', 'é', '😀', '\uD800'],
      [3, 1, 2],
      [],
      [undefined, undefined, 1],
      [1n, 10n, 2n],
    ]
    cases.forEach((arr, i) => {
      const l = newList(`sort${i}`, arr)
      tx(o, () => o.listSort(l))
      expect(tx(o, () => o.toJSRecord(l))).toEqual([...arr].sort())
    })
    const recs = Array.from({ length: 50 }, (_, i) => ({ k: i % 5, i }))
    const l = newList('sortStable', recs)
    tx(o, () =>
      o.listSort(l, (a, b) => (o.dictGet(off(a), 'k') as number) - (o.dictGet(off(b), 'k') as number)),
    )
    expect(tx(o, () => o.toJSRecord(l))).toEqual([...recs].sort((a, b) => a.k - b.k))
    const n = newList('sortNaN', [3, 1, 2])
    tx(o, () => o.listSort(n, () => Number.NaN))
    expect(tx(o, () => o.toJSRecord(n))).toEqual([3, 1, 2])
    const desc = newList('sortDesc', [1, 5, 3, 'x'])
    tx(o, () => o.listSort(desc, (a, b) => String(b).localeCompare(String(a))))
    expect(tx(o, () => o.toJSRecord(desc))).toEqual(['x', 5, 3, 1])
    expect(() => tx(o, () => o.listSort(desc, 5 as never))).toThrow(TypeError)
    expect(o.check()).toEqual([])
  })

  it('2.4 reverse moves slots (strings and records keep their blocks)', () => {
    const l = newList('rev', ['a long string that lives in a block', { x: 1 }, 3, 'short'])
    tx(o, () => o.listReverse(l))
    expect(tx(o, () => o.toJSRecord(l))).toEqual([
      'short',
      3,
      { x: 1 },
      'a long string that lives in a block',
    ])
    expect(o.check()).toEqual([])
  })

  it('2.5 capacity grows geometrically and shrinks when the list empties', () => {
    const l = newList('grow')
    const caps = new Set<number>()
    tx(o, () => {
      for (let i = 0; i < 10000; i++) {
        o.listPush(l, i)
        caps.add(o.pager.mem.u32(l + format.LS_CAP))
      }
    })
    expect(caps.size).toBeLessThan(30) // amortised O(1): few reallocations
    tx(o, () => {
      while (o.listLength(l) > 0) o.listPop(l)
    })
    expect(tx(o, () => o.pager.mem.u32(l + format.LS_CAP))).toBeLessThanOrEqual(16)
    expect(o.check()).toEqual([])
  })
})
