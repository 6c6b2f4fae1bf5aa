// Dict iteration through the proxy (ownKeys + one-lookup descriptor/get traps over the
// objects layer's key listing memo): Object.keys/values/entries, for…in, spread and
// JSON.stringify equal a plain object's after every kind of change, in one turn and
// across turns, with integer-like keys (listed first) and with changes made while a
// for…in is running.
import { open, type Store } from '@persist/persist'
import { afterAll, describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const t = tempDir('persist-iter-')
afterAll(t.cleanup)
const turn = () => new Promise((r) => setImmediate(r))

function views(x: Record<string, unknown>) {
  const forIn: [string, unknown][] = []
  for (const k in x) forIn.push([k, x[k]])
  return {
    keys: Object.keys(x),
    values: Object.values(x),
    entries: Object.entries(x),
    forIn,
    spread: { ...x },
    json: JSON.stringify(x),
  }
}

describe('dict iteration through the proxy', () => {
  let s: Store<{ d: Record<string, unknown> }>
  it('equals a plain object after inserts, deletes, in-place updates and resizes, in one turn and across turns', async () => {
    s = open(t.file('iter.persist'))
    const model: Record<string, unknown> = {}
    s.root.d = {}
    const d = s.root.d
    const step = (k: string, v: unknown) => {
      if (v === undefined) {
        delete d[k]
        delete model[k]
      } else {
        d[k] = v
        model[k] = v
      }
    }
    for (let i = 0; i < 300; i++) step(`k${i}`, i)
    step('10', 'ten') // integer-like keys are listed first, ascending
    step('2', 'two')
    step('x', undefined)
    expect(views(d)).toEqual(views(model))
    for (let i = 0; i < 300; i += 3) step(`k${i}`, undefined) // tombstones, then compaction
    expect(views(d)).toEqual(views(model))
    step('k1', { nested: true }) // in place
    expect(views(d)).toEqual(views(model))
    await turn()
    expect(views(d)).toEqual(views(model))
    for (let i = 0; i < 290; i++) step(`k${i}`, undefined) // shrinks (resize)
    expect(views(d)).toEqual(views(model))
    await turn()
    for (let i = 0; i < 50; i++) step(`n${i}`, i)
    expect(views(d)).toEqual(views(model))
    // interleaved listings of two dicts
    s.root.e = { a: 1, b: 2 }
    const e = s.root.e as Record<string, unknown>
    const ke = Object.keys(e)
    const kd = Object.keys(d)
    expect(ke.map((k) => e[k])).toEqual([1, 2])
    expect(kd.map((k) => d[k])).toEqual(Object.keys(model).map((k) => model[k]))
  })

  it('for…in with changes made in the loop body visits what a plain object visits (deleted keys skipped, values fresh)', () => {
    const mk = () => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]))
    s.root.f = mk()
    const f = s.root.f as Record<string, unknown>
    const plain = mk()
    const run = (x: Record<string, unknown>) => {
      const seen: [string, unknown][] = []
      let n = 0
      for (const k in x) {
        seen.push([k, x[k]])
        if (++n === 5) {
          delete x.k20 // not yet visited: skipped
          x.k30 = 'new value' // read fresh
          for (let i = 0; i < 100; i++) x[`extra${i}`] = i // not visited by for…in (keys listed at the start)
        }
      }
      return seen
    }
    expect(run(f)).toEqual(run(plain))
    expect(Object.entries(f)).toEqual(Object.entries(plain))
    s.close()
  })
})
