// Dict iteration: the streaming generators (dictIterKeys/dictIterEntries) and the key
// listing memo behind dictKeys (O12), checked against a plain JS Map model, including
// changes made while iterating and by another handle of the same file.
import { type Objects, PersistError } from '@persist/objects'
import { afterEach, describe, expect, it } from 'vitest'
import { freshPath, off, open, tempDir, tx } from './helpers.js'

const dir = tempDir()
const opened: Objects[] = []
afterEach(() => {
  for (const x of opened.splice(0)) x.close()
})
function fresh(path = freshPath(dir)): Objects {
  const o = open(path)
  opened.push(o)
  return o
}
/** A dict under root.d with n keys k0..k(n-1) → 0..n-1, some deleted (tombstones). */
function dictWith(o: Objects, n: number): { d: number; model: Map<string, unknown> } {
  const model = new Map<string, unknown>()
  const d = tx(o, () => {
    o.dictSet(o.rootOff, 'd', {})
    const d = off(o.dictGet(o.rootOff, 'd'))
    for (let i = 0; i < n; i++) {
      o.dictSet(d, `k${i}`, i)
      model.set(`k${i}`, i)
    }
    for (let i = 0; i < n; i += 7) {
      o.dictDelete(d, `k${i}`)
      model.delete(`k${i}`)
    }
    return d
  })
  return { d, model }
}

describe('1. dictIterKeys / dictIterEntries', () => {
  it('1.1 insertion order, tombstones skipped, equal to dictKeys/dictEntries', () => {
    const o = fresh()
    const { d, model } = dictWith(o, 300)
    tx(o, () => {
      expect([...o.dictIterKeys(d)]).toEqual([...model.keys()])
      expect([...o.dictIterEntries(d)]).toEqual([...model.entries()])
      expect([...o.dictIterEntries(d)]).toEqual(o.dictEntries(d))
      expect([...o.dictIterKeys(o.newDictRecord())]).toEqual([])
    })
  })

  it('1.2 changes while iterating are followed: in-place updates read fresh, appends visited, deletes skipped, a resize resumes after the last key', () => {
    const o = fresh()
    const { d, model } = dictWith(o, 40)
    tx(o, () => {
      const seen: [string, unknown][] = []
      let step = 0
      for (const [k, v] of o.dictIterEntries(d)) {
        seen.push([k, v])
        step++
        if (step === 3) {
          o.dictSet(d, 'k39', 'updated') // not yet visited: read fresh
          model.set('k39', 'updated')
          o.dictDelete(d, 'k38') // not yet visited: skipped
          model.delete('k38')
        }
        if (step === 5) {
          // many inserts: the entry array is rebuilt (resize) while suspended
          for (let i = 0; i < 200; i++) {
            o.dictSet(d, `new${i}`, i)
            model.set(`new${i}`, i)
          }
        }
      }
      expect(seen).toEqual([...model.entries()])
    })
  })

  it('1.3 the last key visited deleted, then the entries compacted: PERSIST_INVALID; the dict freed: PERSIST_STALE', () => {
    const o = fresh()
    const { d } = dictWith(o, 200)
    tx(o, () => {
      const it = o.dictIterKeys(d)
      const first = it.next().value as string
      o.dictDelete(d, first)
      for (let i = 0; i < 200; i++) o.dictSet(d, `more${i}`, i) // forces a resize
      let err: unknown
      try {
        it.next()
      } catch (e) {
        err = e
      }
      expect((err as PersistError).code).toBe('PERSIST_INVALID')
      expect((err as Error).message).toMatch(/changed while being iterated.*iterate again/)
    })
    const it2 = (() => {
      o.begin()
      const g = o.dictIterKeys(d)
      g.next()
      o.dictDelete(o.rootOff, 'd')
      o.commit() // frees the dict
      return g
    })()
    o.begin()
    expect(() => it2.next()).toThrow(PersistError)
    try {
      it2.next()
    } catch (e) {
      expect((e as PersistError).code).toBe('PERSIST_STALE')
    }
    o.abort()
  })
})

describe('2. the dictKeys listing memo (O12)', () => {
  it('2.1 lookups after a listing return the right values, in and out of order, and after updates', () => {
    const o = fresh()
    const { d, model } = dictWith(o, 500)
    tx(o, () => {
      const keys = o.dictKeys(d)
      expect(keys).toEqual([...model.keys()])
      for (const k of keys) {
        expect(o.dictGetOr(d, k, 'absent')).toBe(model.get(k)) // descriptor, then
        expect(o.dictGet(d, k)).toBe(model.get(k)) // get of the same key
      }
      for (const k of [...keys].reverse()) expect(o.dictGet(d, k)).toBe(model.get(k))
      expect(o.dictGetOr(d, 'k0', 'absent')).toBe('absent') // deleted in dictWith
      o.dictSet(d, keys[10], 'changed') // in place
      expect(o.dictGet(d, keys[10])).toBe('changed')
    })
  })

  it('2.2 a second listing reuses the first (same strings, a fresh array) until the dict changes', () => {
    const o = fresh()
    const { d } = dictWith(o, 50)
    tx(o, () => {
      const a = o.dictKeys(d)
      const b = o.dictKeys(d)
      expect(b).toEqual(a)
      expect(b).not.toBe(a)
      a.push('mutating the returned array changes nothing')
      expect(o.dictKeys(d)).toEqual(b)
      o.dictSet(d, 'appended', 1) // an insert without resize
      expect(o.dictKeys(d)).toEqual([...b, 'appended'])
      o.dictDelete(d, b[0])
      expect(o.dictKeys(d)).toEqual([...b.slice(1), 'appended'])
      expect(o.dictGet(d, b[0])).toBeUndefined()
      expect(o.dictHas(d, b[0])).toBe(false)
    })
  })

  it('2.3 rollback, abort and gc invalidate it', () => {
    const o = fresh()
    const { d } = dictWith(o, 50)
    o.begin()
    const sp = o.savepoint()
    o.dictKeys(d)
    o.dictDelete(d, 'k1')
    for (let i = 0; i < 100; i++) o.dictSet(d, `x${i}`, i)
    o.rollbackTo(sp)
    expect(o.dictGet(d, 'k1')).toBe(1)
    expect(o.dictKeys(d)).not.toContain('x0')
    o.dictSet(d, 'k1', 'in txn')
    o.abort()
    o.begin()
    expect(o.dictGet(d, 'k1')).toBe(1)
    o.dictKeys(d)
    o.gc()
    expect(o.dictGet(d, 'k2')).toBe(2)
    o.commit()
  })

  it("2.4 another handle's commit (a resize and deletes) invalidates it at the next begin", () => {
    const path = freshPath(dir)
    const a = fresh(path)
    const { d } = dictWith(a, 60)
    const b = fresh(path)
    const before = tx(a, () => a.dictKeys(d))
    tx(b, () => {
      for (const k of before.slice(0, 30)) b.dictDelete(d, k) // compacts the entries
      for (let i = 0; i < 100; i++) b.dictSet(d, `b${i}`, i)
    })
    const now = tx(b, () => b.dictKeys(d))
    tx(a, () => {
      for (const k of before.slice(0, 30)) expect(a.dictGet(d, k)).toBeUndefined()
      for (const k of before.slice(30)) expect(a.dictGet(d, k)).toBe(Number(k.slice(1)))
      expect(a.dictKeys(d)).toEqual(now)
    })
  })
})
