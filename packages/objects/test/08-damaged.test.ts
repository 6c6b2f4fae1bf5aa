// Damaged and crafted files (O11): every offset, length and count read from the file
// is checked before use, so a damaged store gives PersistError PERSIST_CORRUPT naming
// the offset (never a RangeError/TypeError, never a hang on a crafted cycle), and
// check() reports the damage without throwing. The bytes are crafted through the
// pager (willWrite + Mem writes in a transaction), i.e. as a buggy or hostile writer
// would leave them.
import { format, type Objects, PersistError } from '@persist/objects'
import { afterEach, describe, expect, it } from 'vitest'
import { freshPath, off, open, tempDir, tx, valueSlotOf } from './helpers.js'

const dir = tempDir()
let o: Objects
afterEach(() => o?.close())

/** A store with a list, a dict, strings, bytes and an object record under the root. */
function sample(): Objects {
  o = open(freshPath(dir), { classOf: (v) => (v instanceof Thing ? 'Thing' : undefined) })
  tx(o, () => {
    o.dictSet(o.rootOff, 'a', [1, 'two', { three: 3 }])
    o.dictSet(o.rootOff, 'b', { x: 1, y: 'why', z: [4, 5] })
    o.dictSet(o.rootOff, 's', 'a long latin1 string '.repeat(10))
    o.dictSet(o.rootOff, 'bytes', new Float64Array([1, 2, 3]))
    o.dictSet(o.rootOff, 'thing', new Thing())
  })
  return o
}
class Thing {
  v = 1
}

/**
 * Writes raw bytes into the file in a committed transaction, then drops the key cache
 * (as another process's commit would: O10).
 */
function poke(fn: (m: Objects['pager']['mem'], w: (off: number, n: number) => void) => void): void {
  tx(o, () => fn(o.pager.mem, (off2, n) => o.pager.willWrite(off2, n)))
  o.dropCaches()
}
const setU64 = (off2: number, v: number) =>
  poke((m, w) => {
    w(off2, 8)
    m.setU64(off2, v)
  })
const setU32 = (off2: number, v: number) =>
  poke((m, w) => {
    w(off2, 4)
    m.setU32(off2, v)
  })
const setU8 = (off2: number, v: number) =>
  poke((m, w) => {
    w(off2, 1)
    m.setU8(off2, v)
  })

/** fn throws PersistError PERSIST_CORRUPT whose message matches re and says what to run. */
function expectCorrupt(fn: () => unknown, re: RegExp): void {
  let err: unknown
  try {
    tx(o, fn)
  } catch (e) {
    err = e
  }
  expect(err, 'expected a PersistError').toBeInstanceOf(PersistError)
  expect((err as PersistError).code, (err as Error).message).toBe('PERSIST_CORRUPT')
  expect((err as Error).message).toMatch(re)
  expect((err as Error).message).toMatch(/persist check/)
}

const R = () => o.rootOff
const slot = (key: string) => tx(o, () => valueSlotOf(o, R(), key))
const rec = (key: string) => tx(o, () => off(o.dictGet(R(), key)))
const checkFinds = (re: RegExp) => {
  const p = o.check()
  expect(p.join('\n')).toMatch(re)
}

describe('1. references to records', () => {
  it.each([
    ['past the end of the mapping', () => o.pager.mem.size],
    ['2^40', () => 2 ** 40],
    ['2^53 - 16', () => 2 ** 53 - 16],
    ['into the header page (256)', () => 256],
    ['unaligned (the root + 8)', () => o.rootOff + 8],
  ])('1.1 a list reference pointing %s: reads, writes and toJS throw PERSIST_CORRUPT naming it', (_, to) => {
    sample()
    const s = slot('a')
    const target = to()
    setU64(s + 8, target)
    const hexTarget = `0x${target.toString(16)}`
    expectCorrupt(() => o.dictGet(R(), 'a'), new RegExp(hexTarget))
    expectCorrupt(() => o.toJSRecord(R()), new RegExp(hexTarget))
    expectCorrupt(() => o.dictEntries(R()), new RegExp(hexTarget))
    expectCorrupt(() => o.dictSet(R(), 'a', 1), new RegExp(hexTarget)) // releasing the old value
    expectCorrupt(() => o.dictDelete(R(), 'a'), new RegExp(hexTarget))
    checkFinds(/not a valid record|dangling record/)
    expect(() => o.stats()).toThrow(PersistError)
    expect(() => tx(o, () => o.gc())).toThrow(PersistError)
  })

  it('1.2 a reference to a block that is not a record (a string block)', () => {
    sample()
    const str = tx(o, () => o.pager.mem.u64(valueSlotOf(o, R(), 's') + 8))
    setU64(slot('a') + 8, str)
    expectCorrupt(() => o.dictGet(R(), 'a'), /not a record/)
  })

  it('1.3 a reference whose slot type disagrees with the record (a list typed as a dict)', () => {
    sample()
    const s = slot('b')
    setU64(s + 8, rec('a'))
    expectCorrupt(() => o.dictGet(R(), 'b'), /says record type 1, the record .* has type 2/)
  })

  it('1.4 a reference count at 2^32-1 cannot overflow to 0', () => {
    sample()
    const a = rec('a')
    setU32(a + format.RC_REFS, 0xffffffff)
    expectCorrupt(() => o.dictSet(R(), 'a2', o.dictGet(R(), 'a')), /reference count overflow/)
  })

  it('1.5 a freed record (type 0) reached through a reference', () => {
    sample()
    setU8(rec('a'), 0)
    expectCorrupt(() => o.dictGet(R(), 'a'), /not a record \(type 0\)/)
    checkFinds(/not a valid record/)
  })
})

describe('2. dicts', () => {
  it.each([
    ['entries block past the end', format.DC_ENTRIES, () => o.pager.mem.size],
    ['entries block at 2^40', format.DC_ENTRIES, () => 2 ** 40],
    ['entries block in the header page', format.DC_ENTRIES, () => 4088],
    ['index block past the end', format.DC_INDEX, () => o.pager.mem.size + 4096],
  ])('2.1 %s: lookups, keys, inserts and toJS throw PERSIST_CORRUPT', (_, field, to) => {
    sample()
    const b = rec('b')
    setU64(b + field, to())
    expectCorrupt(() => o.dictGet(b, 'nope'), /dict 0x[0-9a-f]+ (entries|index) points to/)
    expectCorrupt(() => o.dictKeys(b), /points to/)
    expectCorrupt(() => o.dictSet(b, 'new', 1), /points to/)
    expectCorrupt(() => o.toJSRecord(R()), /points to/)
    checkFinds(/dangling offset|not inside the heap/)
  })

  it.each([
    ['count > used', format.DC_COUNT, 100_000],
    ['used > capacity', format.DC_USED, 1000],
    ['capacity 2^31', format.DC_CAP, 2 ** 31],
    ['buckets 2^32-1', format.DC_NBUCKETS, 0xffffffff],
  ])('2.2 header %s: PERSIST_CORRUPT, check() reports it', (_, field, v) => {
    sample()
    const b = rec('b')
    setU32(b + field, v)
    expectCorrupt(() => o.dictGet(b, 'nope'), /are inconsistent/)
    expectCorrupt(() => o.dictKeys(b), /are inconsistent/)
    checkFinds(/break O5/)
  })

  it('2.3 index buckets naming entries past `used`; an index with no free bucket cannot make an insert loop', () => {
    sample()
    const b = rec('b')
    const m = o.pager.mem
    const [idx, nb] = tx(o, () => [m.u64(b + format.DC_INDEX), m.u32(b + format.DC_NBUCKETS)])
    poke((mm, w) => {
      w(idx, nb * format.BUCKET)
      for (let i = 0; i < nb; i++) if (mm.u32(idx + i * 8) !== 0) mm.setU32(idx + i * 8, 2 ** 31)
    })
    // a key whose bucket hash matches: the entry number is checked before it is used
    const hashes = tx(o, () => Array.from({ length: nb }, (_, i) => m.i32(idx + i * 8 + 4)))
    expect(hashes.some((h) => h !== 0)).toBe(true)
    expectCorrupt(() => o.dictGet(b, 'x'), /names entry 2147483647/)
    poke((mm, w) => {
      w(idx, nb * format.BUCKET)
      for (let i = 0; i < nb; i++) {
        mm.setU32(idx + i * 8, 1)
        mm.setU32(idx + i * 8 + 4, 0x7fffffff) // a hash no probe matches
      }
    })
    expectCorrupt(() => o.dictSet(b, 'brand new key', 1), /no free bucket/)
  })

  it('2.4 a key slot with a non-string tag, and a short key with length 255', () => {
    sample()
    const b = rec('b')
    const ents = tx(o, () => o.pager.mem.u64(b + format.DC_ENTRIES))
    setU8(ents, format.T_BYTES)
    expectCorrupt(() => o.dictKeys(b), /key slot 0x[0-9a-f]+ has tag 11, not a string/)
    checkFinds(/invalid key tag 11/)
    setU8(ents, format.T_SSTR)
    setU8(ents + 1, 255)
    expectCorrupt(() => o.dictKeys(b), /length 255/)
    checkFinds(/short string length 255/)
  })

  it('2.5 an object record whose class name slot points outside the file', () => {
    sample()
    const t = rec('thing')
    poke((m, w) => {
      w(t + format.DC_CLASS, 16)
      m.setU8(t + format.DC_CLASS, format.T_STR)
      m.setU8(t + format.DC_CLASS + 1, format.ENC_LATIN1)
      m.setU32(t + format.DC_CLASS + 4, 64)
      m.setU64(t + format.DC_CLASS + 8, 2 ** 40)
    })
    expectCorrupt(() => o.className(t), /outside the heap/)
  })
})

describe('3. lists', () => {
  it.each([
    ['past the end', () => o.pager.mem.size],
    ['at 2^40', () => 2 ** 40],
    ['in the header page', () => 256],
  ])('3.1 an items block %s: get, push, pop, splice, sort and toJS throw PERSIST_CORRUPT', (_, to) => {
    sample()
    const a = rec('a')
    setU64(a + format.LS_ITEMS, to())
    expectCorrupt(() => o.listGet(a, 1), /list 0x[0-9a-f]+ items points to/)
    expectCorrupt(() => o.listPush(a, 1), /items points to/)
    expectCorrupt(() => o.listPop(a), /items points to/)
    expectCorrupt(() => o.listSplice(a, 0, 1), /items points to/)
    expectCorrupt(() => o.listSort(a), /items points to/)
    expectCorrupt(() => o.listReverse(a), /items points to/)
    expectCorrupt(() => o.listSet(a, 0, 9), /items points to/)
    expectCorrupt(() => o.toJSRecord(R()), /items points to/)
    checkFinds(/dangling offset/)
  })

  it('3.2 length 2^32-1 and length > capacity', () => {
    sample()
    const a = rec('a')
    setU32(a + format.LS_LEN, 0xffffffff)
    expectCorrupt(() => o.listGet(a, 100_000), /exceeds capacity/)
    expectCorrupt(() => o.toJSRecord(a), /exceeds capacity/)
    expectCorrupt(() => o.listPop(a), /exceeds capacity/)
    checkFinds(/break O6/)
  })

  it('3.3 crafted cycles end: items block -> the list record itself, a list item -> its own list, root.a -> the root', () => {
    sample()
    const a = rec('a')
    setU64(a + format.LS_ITEMS, a)
    // the list header read as slots: garbage values or PERSIST_CORRUPT, never a hang
    try {
      tx(o, () => o.toJSRecord(R()))
    } catch (e) {
      expect(e).toBeInstanceOf(PersistError)
    }
    checkFinds(/owned twice|not inside the heap|smaller than capacity/)
    o.close()
    sample()
    const a2 = rec('a')
    const items = tx(o, () => o.pager.mem.u64(a2 + format.LS_ITEMS))
    poke((m, w) => {
      w(items, 16)
      m.setU32(items, format.T_REF | (format.R_LIST << 8))
      m.setU64(items + 8, a2)
    })
    const snap = tx(o, () => o.toJSRecord(a2)) as unknown[]
    expect(snap[0]).toBe(snap) // a cycle, kept
    checkFinds(/reference count/) // the crafted reference was never counted
    o.close()
    sample()
    const sa = slot('a')
    setU64(sa + 8, R())
    setU8(sa + 1, format.R_DICT)
    const root = tx(o, () => o.toJSRecord(R())) as Record<string, unknown>
    expect(root.a).toBe(root)
  })
})

describe('4. strings and bytes', () => {
  it.each([
    ['block past the end', (s: number) => setU64(s + 8, o.pager.mem.size), /outside the heap/],
    ['length 2^32-1', (s: number) => setU32(s + 4, 0xffffffff), /outside the heap/],
    ['encoding 7', (s: number) => setU8(s + 1, 7), /encoding 7/],
  ])('4.1 a string with its %s', (_, damage, re) => {
    sample()
    damage(slot('s'))
    expectCorrupt(() => o.dictGet(R(), 's'), re)
    expectCorrupt(() => o.toJSRecord(R()), re)
  })

  it.each([
    ['subtype 250', (s: number) => setU8(s + 1, 250), /subtype 250/],
    [
      'a length that is not a multiple of 8 (Float64Array)',
      (s: number) => setU32(s + 4, 20),
      /subtype 8 and 20 bytes/,
    ],
    ['length 2^32-8', (s: number) => setU32(s + 4, 0xfffffff8), /outside the heap/],
  ])('4.2 bytes with %s', (_, damage, re) => {
    sample()
    damage(slot('bytes'))
    expectCorrupt(() => o.dictGet(R(), 'bytes'), re)
  })

  it('4.3 a short string with length 255 in a value slot', () => {
    sample()
    const s = slot('a')
    poke((m, w) => {
      w(s, 16)
      m.setU8(s, format.T_SSTR)
      m.setU8(s + 1, 255)
    })
    expectCorrupt(() => o.dictGet(R(), 'a'), /short string .* length 255/)
  })
})

describe('5. the meta block', () => {
  it.each([
    ['into the header page', () => 256],
    ['at the meta block itself', () => o.metaOff],
    ['past the end', () => o.pager.mem.size],
    ['at 2^40', () => 2 ** 40],
  ])('5.1 a root pointer %s is refused at open with PERSIST_CORRUPT', (_, to) => {
    const path = freshPath(dir)
    o = open(path)
    setU64(o.metaOff + format.OM_ROOT, to())
    o.close()
    let err: unknown
    try {
      o = open(path)
    } catch (e) {
      err = e
    }
    expect((err as PersistError).code).toBe('PERSIST_CORRUPT')
    expect((err as Error).message).toMatch(/root dict pointer 0x[0-9a-f]+ .* is invalid.*persist check/)
  })
})

describe('6. random damage inside the graph', () => {
  it('6.1 400 random writes into live blocks (records, arrays, strings): every error is a PersistError, no hang', () => {
    sample()
    tx(o, () => {
      o.dictSet(
        R(),
        'list',
        Array.from({ length: 60 }, (_, i) => ({ i, name: `item number ${i}` })),
      )
      o.dictSet(R(), 'u16', 'UTF-16 ☃ string '.repeat(5))
      o.dictSet(R(), 'big', 2n ** 100n)
    })
    let seed = 12345
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return seed % n
    }
    const m = o.pager.mem
    const blocks = tx(o, () => [...o.heap.blocks()])
    const failures: string[] = []
    let typed = 0
    for (let trial = 0; trial < 400; trial++) {
      o.begin()
      const b = blocks[rnd(blocks.length)]
      const size = o.heap.usableSize(b)
      const at = b + 4 * rnd(Math.max(1, size / 4))
      const values = [0, 1, 0xff, 2 ** 31, 0xffffffff, m.size, m.size + 4096, 4096, rnd(2 ** 32)]
      const v = values[rnd(values.length)]
      const wide = rnd(2) === 0 && at + 8 <= b + size
      o.pager.willWrite(at, wide ? 8 : 4)
      if (wide) m.setU64(at, v)
      else m.setU32(at, v >>> 0)
      o.dropCaches()
      const what = `trial ${trial}: ${wide ? 'u64' : 'u32'} ${v} at 0x${at.toString(16)} (block 0x${b.toString(16)})`
      const step = (name: string, fn: () => unknown) => {
        try {
          fn()
        } catch (e) {
          if (!(e instanceof PersistError)) failures.push(`${what}: ${name}: ${(e as Error)?.stack ?? e}`)
          else typed++
        }
      }
      step('toJS', () => o.toJSRecord(R()))
      step('iterate', () => {
        const walk = (d: number, depth: number) => {
          for (const [, x] of o.dictIterEntries(d)) {
            const xo = (x as { off?: number; kind?: string } | null)?.off
            if (depth < 4 && xo !== undefined) {
              if ((x as { kind: string }).kind === 'list') {
                const n = Math.min(o.listLength(xo), 100)
                for (let i = 0; i < n; i++) o.listGet(xo, i)
              } else walk(xo, depth + 1)
            }
          }
        }
        walk(R(), 0)
      })
      step('keys+get', () => {
        for (const k of o.dictKeys(R())) o.dictGet(R(), k)
      })
      step('check', () => o.check())
      step('stats', () => o.stats())
      step('write', () => {
        o.dictSet(R(), 'probe', ['probe', { x: 1 }])
        o.dictDelete(R(), 'probe')
      })
      step('gc', () => o.gc())
      o.abort() // the journal restores every byte
    }
    expect(failures.slice(0, 5)).toEqual([])
    expect(typed).toBeGreaterThan(100) // the damage was seen, not skipped
    expect(o.check()).toEqual([])
  })
})
