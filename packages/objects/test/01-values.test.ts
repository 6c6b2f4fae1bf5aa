import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { format, hashKey, Objects } from '@persist/objects'
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

/** Stores v under a key, commits, reads it back in a new transaction. */
function roundTrip(v: unknown): unknown {
  tx(o, () => o.dictSet(o.rootOff, 'v', v))
  return tx(o, () => o.dictGet(o.rootOff, 'v'))
}

/** The tag byte of the value slot of root[key] (FORMAT.md "Value slots"). */
function tagOf(key: string): number {
  return tx(o, () => o.pager.mem.u8(valueSlotOf(o, o.rootOff, key)))
}

describe('1. scalar values', () => {
  it('1.1 null, undefined, booleans', () => {
    expect(roundTrip(null)).toBe(null)
    expect(roundTrip(undefined)).toBe(undefined)
    expect(tx(o, () => o.dictHas(o.rootOff, 'v'))).toBe(true)
    expect(roundTrip(true)).toBe(true)
    expect(roundTrip(false)).toBe(false)
  })

  it('1.2 integers and floats are kept apart; -0 is a float', () => {
    for (const v of [
      0,
      1,
      -1,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 32 + 7,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ]) {
      expect(roundTrip(v)).toBe(v)
      expect(tagOf('v')).toBe(format.T_INT)
    }
    for (const v of [
      0.5,
      -1.25,
      2 ** 53,
      1e300,
      Number.EPSILON,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]) {
      expect(roundTrip(v)).toBe(v)
      expect(tagOf('v')).toBe(format.T_FLOAT)
    }
    expect(Object.is(roundTrip(-0), -0)).toBe(true)
    expect(tagOf('v')).toBe(format.T_FLOAT)
    expect(roundTrip(Number.NaN)).toBeNaN()
  })

  it('1.3 bigints: inline when they fit int64, else a magnitude block', () => {
    for (const v of [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
      expect(roundTrip(v)).toBe(v)
      expect(tagOf('v')).toBe(format.T_BIGINT)
    }
    for (const v of [2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, -(10n ** 40n), 3n ** 200n]) {
      expect(roundTrip(v)).toBe(v)
      expect(tagOf('v')).toBe(format.T_BIGREC)
    }
  })

  it('1.4 dates come back as new Date objects', () => {
    const d = new Date(1_700_000_000_123)
    const got = roundTrip(d) as Date
    expect(got).toBeInstanceOf(Date)
    expect(got).not.toBe(d)
    expect(got.getTime()).toBe(d.getTime())
    expect(Number.isNaN((roundTrip(new Date(Number.NaN)) as Date).getTime())).toBe(true)
  })
})

describe('2. strings', () => {
  const cases: [string, string, number][] = [
    ['empty', '', format.T_SSTR],
    ['short latin1', 'hello', format.T_SSTR],
    ['14 latin1 bytes inline', 'abcdefghijklmn', format.T_SSTR],
    ['15 latin1 bytes in a block', 'abcdefghijklmno', format.T_STR],
    ['latin1 accents', 'café ÿ', format.T_SSTR],
    ['short UTF-16 inline', '日本語', format.T_SSTR16],
    ['emoji (surrogate pair)', '😀', format.T_SSTR16],
    ['lone high surrogate', 'a\uD800b', format.T_SSTR16],
    ['lone low surrogate', '\uDC00', format.T_SSTR16],
    ['8 UTF-16 units in a block', '日本語日本語日本', format.T_STR],
    ['long emoji', '👩‍👩‍👧‍👦 family '.repeat(20), format.T_STR],
    ['long with lone surrogates', `${'x'.repeat(100)}\uDBFF${'y'.repeat(5)}\uDC01`, format.T_STR],
    ['NUL characters', '\0\0abc\0', format.T_SSTR],
  ]
  for (const [name, s, tag] of cases) {
    it(`2.x ${name} round-trips exactly`, () => {
      expect(roundTrip(s)).toBe(s)
      expect(tagOf('v')).toBe(tag)
    })
  }

  it('2.1 replacing a string in place writes into the same block when it fits (seed 002 Foo→Foobar)', () => {
    const base = 'Foo'.padEnd(40, '.')
    tx(o, () => o.dictSet(o.rootOff, 'doc', base))
    const slotBlock = () => tx(o, () => o.pager.mem.u64(valueSlotOf(o, o.rootOff, 'doc') + 8))
    const before = slotBlock()
    const blocks = tx(o, () => [...o.heap.blocks()].length)
    tx(o, () => o.dictSet(o.rootOff, 'doc', `Foobar${base.slice(3)}`))
    expect(slotBlock()).toBe(before)
    expect(tx(o, () => [...o.heap.blocks()].length)).toBe(blocks)
    expect(tx(o, () => o.dictGet(o.rootOff, 'doc'))).toBe(`Foobar${base.slice(3)}`)
    // a much longer one moves to a new block, freeing the old (no leak)
    tx(o, () => o.dictSet(o.rootOff, 'doc', 'F'.repeat(5000)))
    expect(tx(o, () => [...o.heap.blocks()].length)).toBe(blocks)
    expect(tx(o, () => o.dictGet(o.rootOff, 'doc'))).toBe('F'.repeat(5000))
    expect(o.check()).toEqual([])
  })
})

describe('3. bytes', () => {
  it('3.1 typed arrays keep their class; reads are fresh copies', () => {
    const values: ArrayBufferView[] = [
      new Uint8Array([1, 2, 255]),
      new Int8Array([-1, 5]),
      new Uint8ClampedArray([0, 255]),
      new Int16Array([-300, 300]),
      new Uint16Array([65535]),
      new Int32Array([-(2 ** 31)]),
      new Uint32Array([2 ** 32 - 1]),
      new Float32Array([1.5, -2]),
      new Float64Array([Math.PI]),
      new BigInt64Array([-5n]),
      new BigUint64Array([2n ** 64n - 1n]),
      Buffer.from('buffer!'),
      new DataView(new Uint8Array([9, 8, 7]).buffer),
      new Uint8Array(0),
    ]
    for (const v of values) {
      const got = roundTrip(v) as ArrayBufferView
      expect(got.constructor).toBe(v.constructor)
      expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength)).toEqual(
        Buffer.from(v.buffer, v.byteOffset, v.byteLength),
      )
    }
    const ab = new Uint8Array([4, 5, 6]).buffer
    const gotAb = roundTrip(ab) as ArrayBuffer
    expect(gotAb).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(gotAb)]).toEqual([4, 5, 6])
    // a view into the middle of a larger buffer stores just its bytes
    const big = new Uint8Array([0, 1, 2, 3, 4, 5])
    expect([...(roundTrip(big.subarray(2, 4)) as Uint8Array)]).toEqual([2, 3])
    // mutating what was read does not write back
    const copy = roundTrip(new Uint8Array([1, 2, 3])) as Uint8Array
    copy[0] = 99
    expect([...(tx(o, () => o.dictGet(o.rootOff, 'v')) as Uint8Array)]).toEqual([1, 2, 3])
  })
})

describe('4. unsupported values name their path and change nothing', () => {
  class Foo {
    x = 1
  }
  const bad: [unknown, string][] = [
    [{ a: { b: [0, 1, 2, () => 1] } }, 'root.a.a.b[3]: functions cannot be stored'],
    [{ s: Symbol('x') }, 'root.a.s: symbols cannot be stored'],
    [{ m: new Map() }, 'root.a.m: Map objects cannot be stored'],
    [[new Set()], 'root.a[0]: Set objects cannot be stored'],
    [{ p: Promise.resolve(1) }, 'root.a.p: Promises cannot be stored'],
    [{ w: new WeakMap() }, 'root.a.w: WeakMap objects cannot be stored'],
    [{ f: new Foo() }, 'root.a.f: instances of Foo cannot be stored'],
    [{ 'odd key': [() => 1] }, 'root.a["odd key"][0]: functions cannot be stored'],
  ]
  for (const [v, msg] of bad) {
    it(`4.x ${msg}`, () => {
      const before = tx(o, () => [...o.heap.blocks()].length)
      o.begin()
      expect(() => o.dictSet(o.rootOff, 'a', v, 'root')).toThrow(TypeError)
      try {
        o.dictSet(o.rootOff, 'a', v, 'root')
      } catch (e) {
        expect((e as Error).message.startsWith(msg)).toBe(true)
      }
      expect(o.dictHas(o.rootOff, 'a')).toBe(false)
      o.commit()
      expect(tx(o, () => [...o.heap.blocks()].length)).toBe(before)
    })
  }
  it('4.1 top-level functions and symbols, and bad keys', () => {
    o.begin()
    expect(() => o.dictSet(o.rootOff, 'f', () => 1, 'root')).toThrow('root.f: functions cannot be stored')
    expect(() => o.listPush(o.dictGet(o.rootOff, 'nope') as never, 1)).toThrow()
    expect(() => o.dictSet(o.rootOff, 1 as unknown as string, 1)).toThrow(TypeError)
    o.abort()
  })
  it('4.2 a class instance is stored as an object record when hooks.classOf names it', () => {
    const p = freshPath(dir)
    const q = open(p, { classOf: (v) => (v instanceof Foo ? 'Foo' : undefined) })
    tx(q, () => q.dictSet(q.rootOff, 'foo', new Foo()))
    const ref = tx(q, () => q.dictGet(q.rootOff, 'foo'))
    expect(tx(q, () => q.kind(off(ref)))).toBe('object')
    expect(tx(q, () => q.className(off(ref)))).toBe('Foo')
    expect(tx(q, () => q.toJSRecord(off(ref)))).toEqual({ x: 1 })
    expect(q.check()).toEqual([])
    q.close()
  })
})

describe('5. key hash (FORMAT.md vectors)', () => {
  it('5.1 hashKey matches every test vector in FORMAT.md', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
    const text = readFileSync(join(root, 'FORMAT.md'), 'utf8')
    const section = text.slice(text.indexOf('## Objects'))
    const rows = [...section.matchAll(/^\| `(.*)` \| (0x[0-9a-f]{8}) \|$/gm)]
    expect(rows.length).toBeGreaterThanOrEqual(8)
    for (const [, lit, h] of rows) {
      const s = JSON.parse(`"${lit}"`) as string
      expect(`0x${hashKey(s).toString(16).padStart(8, '0')}`).toBe(h)
    }
    // the classic FNV-1a 32 vectors (ASCII code units == bytes)
    expect(hashKey('')).toBe(0x811c9dc5)
    expect(hashKey('a')).toBe(0xe40c292c)
    expect(hashKey('foobar')).toBe(0xbf9cf968)
  })
})

describe('6. store-level errors', () => {
  it('6.2 values survive close and reopen', () => {
    tx(o, () => o.dictSet(o.rootOff, 'keep', { n: 42, s: 'persisted', l: [1, 'two', 3.5] }))
    o.close()
    o = open(path)
    expect(tx(o, () => o.toJSRecord(off(o.dictGet(o.rootOff, 'keep'))))).toEqual({
      n: 42,
      s: 'persisted',
      l: [1, 'two', 3.5],
    })
    expect(o.check()).toEqual([])
  })
  it('6.3 a read-only open reads, checks and refuses writes with PERSIST_READONLY', () => {
    tx(o, () => o.dictSet(o.rootOff, 'ro', { b: [1] }))
    const r = Objects.open(path, { readonly: true })
    try {
      r.begin()
      expect(r.toJS(r.dictGet(r.rootOff, 'ro'))).toEqual({ b: [1] })
      expect(() => r.dictSet(r.rootOff, 'ro', 2)).toThrow(
        expect.objectContaining({ code: 'PERSIST_READONLY' }),
      )
      expect(() => r.dictSet(r.rootOff, 'new key', 2)).toThrow(
        expect.objectContaining({ code: 'PERSIST_READONLY' }),
      )
      r.abort()
      expect(r.check()).toEqual([])
    } finally {
      r.close()
    }
  })
})
