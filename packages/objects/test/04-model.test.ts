import { isDeepStrictEqual } from 'node:util'
import type { Objects } from '@persist/objects'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyOp, KEYS } from './fixtures/model.mjs'
import { freshPath, open, tempDir, tx } from './helpers.js'

const dir = tempDir()

// JSON-ish values with the store's distinctions: ints, floats (incl. -0), strings
// (latin1, UTF-16, lone surrogates, long), bigints, dates, nested arrays/objects.
const scalar = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, 2 ** 53, Number.NaN),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', minLength: 10, maxLength: 60 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.integer({ min: 0, max: 2e12 }).map((t) => new Date(t)),
)
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('arr'), tie('obj')),
  arr: fc.array(tie('v'), { maxLength: 4 }),
  obj: fc.dictionary(fc.constantFrom(...KEYS), tie('v'), { maxKeys: 4 }),
})).v
const op = fc.record({
  k: fc.integer({ min: 0, max: 9 }),
  a: fc.nat(1000),
  b: fc.nat(1000),
  c: fc.nat(1000),
  v: value,
})

function snapshot(o: Objects): unknown {
  return tx(o, () => o.toJSRecord(o.rootOff))
}

describe('model test: random operations on the store and on a plain JS model', () => {
  it('stays equal after every step, after gc(), and after close + reopen; check() clean; no leaks', () => {
    let runs = 0
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.nat(5), (ops, txnEvery) => {
        const path = freshPath(dir)
        let o = open(path)
        const model: Record<string, unknown> = {}
        try {
          o.begin()
          ops.forEach((x, i) => {
            applyOp(model, x, o)
            if (i % (txnEvery + 1) === txnEvery) {
              o.commit()
              const got = snapshot(o)
              if (!isDeepStrictEqual(got, model))
                throw new Error(
                  `differs after op ${i}: ${JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
                )
              o.begin()
            }
          })
          o.commit()
          expect(isDeepStrictEqual(snapshot(o), model)).toBe(true)
          tx(o, () => o.gc())
          const problems = o.check()
          expect(problems).toEqual([])
          const s = o.stats()
          expect(s.liveBytes).toBe(s.reachableBytes)
          o.close()
          o = open(path)
          expect(isDeepStrictEqual(snapshot(o), model)).toBe(true)
          expect(o.check()).toEqual([])
          runs++
        } finally {
          o.close()
        }
      }),
      { numRuns: 150 },
    )
    expect(runs).toBe(150)
  })
})
