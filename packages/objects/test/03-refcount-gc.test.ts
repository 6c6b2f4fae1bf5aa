import { openHeap } from '@persist/heap'
import { format, type Objects, PersistError, RecordRef } from '@persist/objects'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshPath, off, open, tempDir, tx, valueSlotOf } from './helpers.js'

const dir = tempDir()
let o: Objects
beforeAll(() => {
  o = open(freshPath(dir))
})
afterAll(() => o.close())

const blockCount = () => tx(o, () => [...o.heap.blocks()].length)
const R = () => o.rootOff

describe('1. reference counts and deferred frees', () => {
  it('1.1 a record moved between lists in one transaction survives (pop then push)', () => {
    tx(o, () => {
      o.dictSet(R(), 'people', [{ name: 'Joe' }, { name: 'Ann' }])
      o.dictSet(R(), 'archive', [])
    })
    const joe = tx(o, () => {
      const people = off(o.dictGet(R(), 'people'))
      const archive = off(o.dictGet(R(), 'archive'))
      const p = o.listPop(people) as RecordRef
      o.listPush(archive, p)
      return p
    })
    expect(tx(o, () => o.isLive(joe.off, joe.gen))).toBe(true)
    expect(tx(o, () => o.toJSRecord(R()))).toMatchObject({
      people: [{ name: 'Joe' }],
      archive: [{ name: 'Ann' }],
    })
    expect(o.check()).toEqual([])
  })

  it('1.2 removing the last reference frees the record and everything it owns at commit', () => {
    const before = blockCount()
    tx(o, () =>
      o.dictSet(R(), 'tmp', { a: 'a string long enough for a block', b: [1, 2, { c: 'x'.repeat(100) }] }),
    )
    expect(blockCount()).toBeGreaterThan(before)
    const ref = tx(o, () => o.dictGet(R(), 'tmp')) as RecordRef
    tx(o, () => o.dictDelete(R(), 'tmp'))
    expect(blockCount()).toBe(before)
    expect(tx(o, () => o.isLive(ref.off, ref.gen))).toBe(false)
    expect(o.check()).toEqual([])
  })

  it('1.3 a shared record lives until its last reference goes', () => {
    tx(o, () => o.dictSet(R(), 's1', { shared: true }))
    const ref = tx(o, () => o.dictGet(R(), 's1')) as RecordRef
    tx(o, () => {
      o.dictSet(R(), 's2', ref)
      o.dictSet(R(), 's3', [ref, ref])
    })
    expect(tx(o, () => o.pager.mem.u32(ref.off + 8))).toBe(4)
    tx(o, () => o.dictDelete(R(), 's1'))
    tx(o, () => o.dictDelete(R(), 's3'))
    expect(tx(o, () => o.isLive(ref.off, ref.gen))).toBe(true)
    expect(tx(o, () => o.toJSRecord(off(o.dictGet(R(), 's2'))))).toEqual({ shared: true })
    tx(o, () => o.dictSet(R(), 's2', 0))
    expect(tx(o, () => o.isLive(ref.off, ref.gen))).toBe(false)
    expect(o.check()).toEqual([])
  })

  it('1.4 records created but never attached are freed at commit', () => {
    const before = blockCount()
    const d = tx(o, () => {
      const d = o.newDictRecord()
      o.dictSet(d, 'x', 'some string that needs a block')
      const l = o.newListRecord()
      o.listPush(l, 1, 2, 3)
      return d
    })
    expect(blockCount()).toBe(before)
    expect(tx(o, () => o.isLive(d, 1))).toBe(false)
    expect(o.check()).toEqual([])
  })

  it('1.5 shared sub-objects of a copied value stay shared; cycles are kept', () => {
    const shared = { s: 1 }
    const v: Record<string, unknown> = { a: shared, b: shared, list: [shared] }
    v.self = v
    tx(o, () => o.dictSet(R(), 'cyc', v))
    const snap = tx(o, () => o.toJSRecord(off(o.dictGet(R(), 'cyc')))) as Record<string, unknown>
    expect(snap.a).toBe(snap.b)
    expect((snap.list as unknown[])[0]).toBe(snap.a)
    expect(snap.self).toBe(snap)
    expect(o.check()).toEqual([])
  })
})

describe('2. stale handles', () => {
  it('2.1 a handle to a freed record fails with PERSIST_STALE', () => {
    tx(o, () => o.dictSet(R(), 'gone', { x: 1 }))
    const h = tx(o, () => o.dictGet(R(), 'gone')) as RecordRef
    expect(tx(o, () => o.gen(h.off))).toBe(h.gen)
    tx(o, () => o.dictDelete(R(), 'gone'))
    o.begin()
    expect(o.isLive(h.off, h.gen)).toBe(false)
    let err: unknown
    try {
      o.assertLive(h.off, h.gen)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PersistError)
    expect((err as PersistError).code).toBe('PERSIST_STALE')
    expect((err as Error).message).toMatch(/removed from the store \(it was at 0x[0-9a-f]+ gen \d+\)/)
    expect(() => o.dictGet(h.off, 'x')).toThrow(PersistError)
    expect(() => o.kind(h.off)).toThrow(PersistError)
    // storing the stale handle is refused too
    expect(() => o.dictSet(R(), 'again', h)).toThrow(/removed from the store/)
    o.abort()
  })

  it('2.2 the memory of a freed record reused by a new record does not revive an old handle', () => {
    tx(o, () => o.dictSet(R(), 'r1', { x: 1 }))
    const h = tx(o, () => o.dictGet(R(), 'r1')) as RecordRef
    tx(o, () => o.dictDelete(R(), 'r1'))
    for (let i = 0; i < 20; i++) tx(o, () => o.dictSet(R(), `n${i}`, { i }))
    expect(tx(o, () => o.isLive(h.off, h.gen))).toBe(false)
    tx(o, () => {
      for (let i = 0; i < 20; i++) o.dictDelete(R(), `n${i}`)
    })
  })

  it('2.3 records created after a savepoint are not live once it is rolled back', () => {
    o.begin()
    const sp = o.savepoint()
    o.dictSet(R(), 'rolled', { y: 2 })
    const h = o.dictGet(R(), 'rolled') as RecordRef
    expect(o.isLive(h.off, h.gen)).toBe(true)
    o.rollbackTo(sp)
    expect(o.isLive(h.off, h.gen)).toBe(false)
    expect(o.dictHas(R(), 'rolled')).toBe(false)
    o.commit()
    expect(o.check()).toEqual([])
  })

  it('2.4 abort drops the pending set and the store is as before', () => {
    const before = tx(o, () => o.toJSRecord(R()))
    o.begin()
    o.dictSet(R(), 'aborted', [1, 2, 3])
    o.dictDelete(R(), 'people')
    o.abort()
    expect(tx(o, () => o.toJSRecord(R()))).toEqual(before)
    expect(o.check()).toEqual([])
  })
})

describe('3. cycle collection', () => {
  it('3.1 an unreachable cycle survives refcounting, is garbage (not a check() problem), gc() frees it', () => {
    const before = blockCount()
    tx(o, () => {
      o.dictSet(R(), 'ring', { name: 'a node with a long name' })
      const a = off(o.dictGet(R(), 'ring'))
      o.dictSet(a, 'next', { name: 'b', list: [1, 2, 3] })
      const b = off(o.dictGet(a, 'next'))
      o.dictSet(b, 'next', o.dictGet(R(), 'ring'))
      o.dictSet(a, 'self', o.dictGet(R(), 'ring'))
      // a live record referenced from the garbage cycle: its count must be fixed by gc
      o.dictSet(R(), 'keeper', { kept: true })
      o.dictSet(b, 'keeper', o.dictGet(R(), 'keeper'))
    })
    tx(o, () => o.dictDelete(R(), 'ring'))
    // a healthy store that has not run gc() yet: no problems (the live 'keeper' counts
    // the reference from the garbage), the cycle is reported as garbage
    expect(o.check()).toEqual([])
    const audit = o.audit()
    expect(audit.problems).toEqual([])
    expect(audit.garbage.objects).toBe(3) // a, b, b.list
    expect(audit.garbage.blocks).toBeGreaterThanOrEqual(3 + 2 * 2) // records + dict arrays
    expect(audit.garbage.bytes).toBeGreaterThan(0)
    const st = o.stats()
    expect(st.garbage).toEqual(audit.garbage)
    expect(st.liveBytes).toBe(st.reachableBytes + st.garbage.bytes)
    const res = tx(o, () => o.gc())
    expect(res.freedObjects).toBe(3) // a, b, b.list
    expect(res.freedBytes).toBeGreaterThan(0)
    expect(o.check()).toEqual([])
    expect(o.audit().garbage).toEqual({ objects: 0, blocks: 0, bytes: 0 })
    expect(res.freedBytes).toBe(audit.garbage.bytes)
    tx(o, () => o.dictDelete(R(), 'keeper'))
    expect(blockCount()).toBe(before)
    expect(o.check()).toEqual([])
    const s = o.stats()
    expect(s.liveBytes).toBe(s.reachableBytes)
  })

  it('3.1b real leaks are still problems: an orphan block, an unreachable record nothing refers to, a wrong count inside garbage', () => {
    tx(o, () => {
      o.dictSet(R(), 'ring2', { name: 'x' })
      const a = off(o.dictGet(R(), 'ring2'))
      o.dictSet(a, 'self', o.dictGet(R(), 'ring2'))
    })
    const a = tx(o, () => off(o.dictGet(R(), 'ring2')))
    tx(o, () => o.dictDelete(R(), 'ring2'))
    expect(o.check()).toEqual([])
    const m = o.pager.mem
    // a wrong count inside the garbage cycle (1 reference, count 5)
    tx(o, () => {
      o.pager.willWrite(a + format.RC_REFS, 4)
      m.setU32(a + format.RC_REFS, 5)
    })
    expect(o.check().join('\n')).toMatch(
      /unreachable record 0x[0-9a-f]+: reference count 5, found 1 references/,
    )
    tx(o, () => o.gc())
    expect(o.check()).toEqual([])
    // a block nothing owns (as a bug or a torn write would leave it)
    const orphan = tx(o, () => o.heap.alloc(100))
    expect(o.check().join('\n')).toMatch(
      new RegExp(`block 0x${orphan.toString(16)} is not reachable from the root`),
    )
    // an unreachable record with count 0 (commit would have freed it)
    tx(o, () => o.heap.free(orphan))
    const lost = tx(o, () => {
      const r = o.heap.alloc(format.DICT_SIZE)
      o.pager.willWrite(r, format.DICT_SIZE)
      m.bytes(r, format.DICT_SIZE).fill(0)
      const g = m.u32(o.metaOff + format.OM_NEXT_GEN) - 1
      m.setU8(r, format.R_DICT)
      m.setU32(r + format.RC_GEN, g)
      m.setU32(r + format.RC_CHECK, (g ^ (r / 16) ^ format.CHECK_SALT) >>> 0)
      return r
    })
    expect(o.check().join('\n')).toMatch(
      new RegExp(`record 0x${lost.toString(16)} is not reachable from the root and nothing refers to it`),
    )
    expect(o.audit().garbage.objects).toBe(1)
    tx(o, () => o.gc())
    expect(o.check()).toEqual([])
  })

  it('3.2 gc keeps records that are pending in the current transaction', () => {
    o.begin()
    const d = o.newDictRecord()
    o.dictSet(d, 'x', 1)
    o.gc()
    expect(o.dictGet(d, 'x')).toBe(1)
    o.dictSet(R(), 'adopted', new RecordRef(o, d, 'dict', o.gen(d)))
    o.commit()
    expect(tx(o, () => o.toJSRecord(off(o.dictGet(R(), 'adopted'))))).toEqual({ x: 1 })
    expect(o.check()).toEqual([])
  })

  it('3.3 stats counts objects by type', () => {
    const s = o.stats()
    expect(s.objects.dict).toBeGreaterThan(0)
    expect(s.objects.list).toBeGreaterThan(0)
    expect(typeof s.liveBytes).toBe('number')
  })
})

describe('4. damaged stores', () => {
  it('4.1 check() reports a wrong count, a bad tag and a dangling offset without throwing', () => {
    const p = freshPath(dir)
    const q = open(p)
    tx(q, () => q.dictSet(q.rootOff, 'a', { b: [1, 2], s: 'a string long enough for its own block' }))
    const a = tx(q, () => off(q.dictGet(q.rootOff, 'a')))
    const m = q.pager.mem
    // 1. wrong reference count
    tx(q, () => {
      q.pager.willWrite(a + format.RC_REFS, 4)
      m.setU32(a + format.RC_REFS, 7)
    })
    expect(q.check().some((s) => /reference count 7, found 1/.test(s))).toBe(true)
    tx(q, () => {
      q.pager.willWrite(a + format.RC_REFS, 4)
      m.setU32(a + format.RC_REFS, 1)
    })
    // 2. a bad tag in the list, 3. a dangling string block offset
    const l = tx(q, () => off(q.dictGet(a, 'b')))
    const items = tx(q, () => m.u64(l + format.LS_ITEMS))
    const sslot = tx(q, () => valueSlotOf(q, a, 's'))
    tx(q, () => {
      q.pager.willWrite(items, 16)
      m.setU8(items, 99)
      q.pager.willWrite(sslot, 16)
      m.setU64(sslot + 8, 0x7ffff0)
    })
    const problems = q.check()
    expect(problems.some((s) => /invalid value tag 99/.test(s))).toBe(true)
    expect(problems.some((s) => /dangling offset 0x7ffff0/.test(s))).toBe(true)
    // reading a bad slot is a PERSIST_CORRUPT error, not garbage
    expect(() => tx(q, () => q.listGet(l, 0))).toThrow(/invalid value tag 99/)
    tx(q, () => {
      q.pager.willWrite(sslot, 16)
      m.setU64(sslot + 8, 2 ** 40)
    })
    expect(() => tx(q, () => q.dictGet(a, 's'))).toThrow(expect.objectContaining({ code: 'PERSIST_CORRUPT' }))
    q.close()
  })

  it('4.2 heap root 0 pointing at something else is PERSIST_CORRUPT; a newer layout is PERSIST_VERSION', () => {
    const p = freshPath(dir)
    const q = open(p)
    const meta = q.metaOff
    const blk = tx(q, () => {
      const b = q.heap.alloc(64, { zero: true })
      q.pager.willWrite(b, 64)
      q.heap.setRoot(0, b)
      return b
    })
    q.close()
    expect(() => open(p)).toThrow(expect.objectContaining({ code: 'PERSIST_CORRUPT' }))
    const h = openHeap(p)
    h.pager.begin()
    h.setRoot(0, meta)
    h.pager.willWrite(meta + format.OM_VERSION, 4)
    h.pager.mem.setU32(meta + format.OM_VERSION, format.OBJECTS_VERSION + 1)
    h.free(blk)
    h.pager.commit()
    h.close()
    expect(() => open(p)).toThrow(expect.objectContaining({ code: 'PERSIST_VERSION' }))
  })
})

describe('5. savepoints and the journaled-line cache', () => {
  it('5.1 writes after a savepoint to lines already written before it are undone by rollbackTo', () => {
    const p = freshPath(dir)
    const q = open(p)
    const long = 'a string long enough to live in its own block'
    tx(q, () => {
      q.dictSet(q.rootOff, 'x', 0)
      q.dictSet(q.rootOff, 's', long)
    })
    q.begin()
    q.dictSet(q.rootOff, 'x', 1)
    q.dictSet(q.rootOff, 's', long.toUpperCase())
    const sp = q.savepoint()
    q.dictSet(q.rootOff, 'x', 2)
    q.dictSet(q.rootOff, 'x', 3)
    q.dictSet(q.rootOff, 's', long.replace('a', 'b')) // same length: rewritten in place
    q.dictSet(q.rootOff, 'y', [1, 2, 3])
    q.rollbackTo(sp)
    expect(q.dictGet(q.rootOff, 'x')).toBe(1)
    expect(q.dictGet(q.rootOff, 's')).toBe(long.toUpperCase())
    expect(q.dictHas(q.rootOff, 'y')).toBe(false)
    const sp2 = q.savepoint()
    q.dictSet(q.rootOff, 'x', 4)
    q.rollbackTo(sp2)
    expect(q.dictGet(q.rootOff, 'x')).toBe(1)
    q.commit()
    q.begin()
    q.dictSet(q.rootOff, 'x', 5)
    q.dictSet(q.rootOff, 'x', 6)
    q.dictSet(q.rootOff, 's', long)
    q.abort()
    q.close()
    const r = open(p)
    expect(tx(r, () => [r.dictGet(r.rootOff, 'x'), r.dictGet(r.rootOff, 's')])).toEqual([
      1,
      long.toUpperCase(),
    ])
    expect(r.check()).toEqual([])
    r.close()
  })
})
