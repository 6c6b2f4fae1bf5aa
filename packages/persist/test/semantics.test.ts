/**
 * The same operations on a persistent proxy and on a plain object/array must give
 * identical results (return values and resulting contents).
 */

import { open, toJS } from '@persist/persist'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const t = tempDir()
process.on('exit', t.cleanup)
const store = open(t.file('semantics.persist'))

function both<T extends object>(init: T): [T, T] {
  store.root.subject = init
  return [store.root.subject as T, structuredClone(init)]
}

describe('dict semantics', () => {
  it('keys, values, entries, spread, for…in, JSON, in, delete', () => {
    const init = { b: 1, a: 'x', 10: 'ten', 2: 'two', nested: { z: [1, { y: 2 }] } }
    const [p, o] = both(init)
    expect(Object.keys(p)).toEqual(Object.keys(o))
    expect(Object.entries(p).map(([k, v]) => [k, typeof v])).toEqual(
      Object.entries(o).map(([k, v]) => [k, typeof v]),
    )
    expect({ ...p, nested: 0 }).toEqual({ ...o, nested: 0 })
    const forIn: string[] = []
    for (const k in p) forIn.push(k)
    const forInO: string[] = []
    for (const k in o) forInO.push(k)
    expect(forIn).toEqual(forInO)
    expect(JSON.stringify(p)).toBe(JSON.stringify(o))
    expect('a' in p).toBe(true)
    expect('toString' in p).toBe('toString' in o)
    expect(Object.hasOwn(p, 'a')).toBe(true)
    expect(Object.hasOwn(p, 'zz')).toBe(false)
    expect(delete (p as Record<string, unknown>).a).toBe(delete (o as Record<string, unknown>).a)
    expect(Object.keys(p)).toEqual(Object.keys(o))
    expect(String(p)).toBe(String(o))
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype)
    expect(p instanceof Object).toBe(true)
  })

  it('random set/delete sequences match a plain object', () => {
    const key = fc.constantFrom('a', 'b', 'c', '0', '7', '12', 'long-key-with-ünïcödé', '😀', '')
    const value = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: false }),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.integer(), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 3 }),
    )
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, value }),
      fc.record({ kind: fc.constant('del' as const), key }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const [p, o] = both({} as Record<string, unknown>)
        for (const x of ops) {
          if (x.kind === 'set') {
            p[x.key] = x.value
            o[x.key] = structuredClone(x.value)
          } else expect(delete p[x.key]).toBe(delete o[x.key])
          expect(Object.keys(p)).toEqual(Object.keys(o))
        }
        expect(toJS(p)).toEqual(o)
      }),
      { numRuns: 150 },
    )
  })
})

describe('list semantics', () => {
  const methods: Array<[string, (a: any[]) => unknown]> = [
    ['push', (a) => a.push(1, 2)],
    ['pop', (a) => a.pop()],
    ['shift', (a) => a.shift()],
    ['unshift', (a) => a.unshift('u', 'v')],
    ['splice middle', (a) => a.splice(1, 2, 'x', 'y', 'z')],
    ['splice negative', (a) => a.splice(-2)],
    ['splice no args', (a) => a.splice()],
    ['sort default', (a) => a.sort()],
    ['sort numeric', (a) => a.sort((x: any, y: any) => Number(x) - Number(y))],
    ['reverse', (a) => a.reverse()],
    ['slice', (a) => a.slice(1, -1)],
    ['map', (a) => a.map((x: unknown) => typeof x)],
    ['filter', (a) => a.filter((x: unknown) => typeof x === 'number')],
    ['reduce', (a) => a.reduce((s: string, x: unknown) => s + String(x), '')],
    ['find', (a) => a.find((x: unknown) => x === 3)],
    ['findIndex', (a) => a.findIndex((x: unknown) => x === 3)],
    ['includes', (a) => a.includes(3)],
    ['indexOf', (a) => a.indexOf(3)],
    ['lastIndexOf', (a) => a.lastIndexOf(3)],
    ['at', (a) => [a.at(0), a.at(-1)]],
    ['join', (a) => a.join('-')],
    ['for…of', (a) => [...a]],
    ['entries', (a) => [...a.entries()]],
    ['length set shorter', (a) => (a.length = 2)],
    ['length set longer', (a) => (a.length = 7)],
    ['index set past end', (a) => (a[6] = 'six')],
    ['fill', (a) => a.fill(0, 1, 3)],
    ['copyWithin', (a) => a.copyWithin(0, 3)],
    ['concat', (a) => a.concat([9])],
    ['flat', (a) => a.flat()],
    ['some/every', (a) => [a.some((x: unknown) => x === 1), a.every((x: unknown) => x !== null)]],
    ['toString', (a) => a.toString()],
    ['keys', (a) => Object.keys(a)],
    ['isArray', (a) => Array.isArray(a)],
    ['JSON', (a) => JSON.stringify(a)],
  ]
  for (const [name, fn] of methods) {
    it(name, () => {
      const init = [5, 3, 'b', 10, 1, 'a', 3, [7, 8]]
      const [p, o] = both(init)
      const rp = fn(p)
      const ro = fn(o)
      expect(toJS(rp)).toEqual(ro)
      expect(toJS(p)).toEqual(o)
      expect(p.length).toBe(o.length)
    })
  }

  it('random push/pop/splice/set sequences match a plain array', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('push' as const), v: fc.integer() }),
      fc.record({ k: fc.constant('pop' as const) }),
      fc.record({ k: fc.constant('shift' as const) }),
      fc.record({ k: fc.constant('unshift' as const), v: fc.string({ maxLength: 3 }) }),
      fc.record({
        k: fc.constant('splice' as const),
        s: fc.integer({ min: -5, max: 8 }),
        d: fc.integer({ min: 0, max: 3 }),
        items: fc.array(fc.integer(), { maxLength: 3 }),
      }),
      fc.record({ k: fc.constant('set' as const), i: fc.nat(8), v: fc.integer() }),
      fc.record({ k: fc.constant('len' as const), n: fc.nat(6) }),
      fc.record({ k: fc.constant('sort' as const) }),
      fc.record({ k: fc.constant('reverse' as const) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const [p, o] = both([] as unknown[])
        for (const x of ops) {
          let a: unknown
          let b: unknown
          switch (x.k) {
            case 'push':
              a = p.push(x.v)
              b = o.push(x.v)
              break
            case 'pop':
              a = p.pop()
              b = o.pop()
              break
            case 'shift':
              a = p.shift()
              b = o.shift()
              break
            case 'unshift':
              a = p.unshift(x.v)
              b = o.unshift(x.v)
              break
            case 'splice':
              a = toJS(p.splice(x.s, x.d, ...x.items))
              b = o.splice(x.s, x.d, ...x.items)
              break
            case 'set':
              p[x.i] = x.v
              o[x.i] = x.v
              for (let i = 0; i < o.length; i++) if (!(i in o)) o[i] = undefined
              break
            case 'len':
              p.length = x.n
              o.length = x.n
              for (let i = 0; i < o.length; i++) if (!(i in o)) o[i] = undefined
              break
            case 'sort':
              p.sort()
              o.sort()
              break
            case 'reverse':
              p.reverse()
              o.reverse()
              break
          }
          expect(a).toEqual(b)
        }
        expect(toJS(p)).toEqual(o)
      }),
      { numRuns: 150 },
    )
  })

  it('documented difference: delete leaves undefined, not a hole', () => {
    const [p] = both([1, 2, 3])
    delete p[1]
    expect(p.length).toBe(3)
    expect(p[1]).toBeUndefined()
    expect(1 in p).toBe(true)
  })

  it('non-index properties, freezing and prototype changes throw', () => {
    const [p] = both([1])
    expect(() => {
      ;(p as any).foo = 1
    }).toThrow(TypeError)
    expect(() => Object.freeze(p)).toThrow(TypeError)
    expect(() => Object.setPrototypeOf(p, null)).toThrow(TypeError)
    expect(() => {
      p.length = -1
    }).toThrow(RangeError)
  })
})
