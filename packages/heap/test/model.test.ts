import { join } from 'node:path'
import { type Heap, openHeap } from '@persist/heap'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
let n = 0

interface Block {
  off: number
  size: number
  fill: number
}
type Op =
  | { t: 'alloc'; size: number; fill: number }
  | { t: 'free'; pick: number }
  | { t: 'realloc'; pick: number; size: number; fill: number }
  | { t: 'reopen' }
  | { t: 'rollback'; sizes: number[] }

const sizeArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 600 }) },
  { weight: 3, arbitrary: fc.integer({ min: 601, max: 32768 }) },
  { weight: 1, arbitrary: fc.integer({ min: 32769, max: 300_000 }) },
)
const fillArb = fc.integer({ min: 1, max: 255 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('alloc' as const), size: sizeArb, fill: fillArb }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('free' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('realloc' as const),
      pick: fc.nat(),
      size: sizeArb,
      fill: fillArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('rollback' as const), sizes: fc.array(sizeArb, { maxLength: 8 }) }),
  },
)

function write(h: Heap, off: number, size: number, fill: number): void {
  h.pager.willWrite(off, size)
  h.mem.bytes(off, size).fill(fill)
}

function verify(h: Heap, model: Block[]): void {
  expect(h.check()).toEqual([])
  h.transaction(() => {
    const sorted = [...model].sort((a, b) => a.off - b.off)
    for (let i = 0; i < sorted.length; i++) {
      const b = sorted[i]
      const usable = h.usableSize(b.off)
      expect(usable).toBeGreaterThanOrEqual(b.size)
      if (i + 1 < sorted.length) expect(b.off + usable).toBeLessThanOrEqual(sorted[i + 1].off) // no overlap
      const bytes = h.mem.bytes(b.off, b.size)
      let ok = true
      for (let j = 0; j < b.size; j++) if (bytes[j] !== b.fill) ok = false
      expect(ok, `block ${b.off} keeps its data`).toBe(true)
    }
    expect([...h.blocks()].sort((a, b) => a - b)).toEqual(sorted.map((b) => b.off))
    expect(h.stats().blocksLive).toBe(model.length)
  })
}

describe('8. model-based (fast-check)', () => {
  it('8.1 random alloc/free/realloc/rollback/reopen keep data, no overlap, check() clean', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const file = join(dir, `m${n++}.persist`)
        let h = openHeap(file)
        const model: Block[] = []
        try {
          for (const op of ops) {
            if (op.t === 'alloc') {
              const off = h.transaction(() => {
                const o = h.alloc(op.size)
                write(h, o, op.size, op.fill)
                return o
              })
              model.push({ off, size: op.size, fill: op.fill })
            } else if (op.t === 'free') {
              if (model.length === 0) continue
              const [b] = model.splice(op.pick % model.length, 1)
              h.free(b.off)
            } else if (op.t === 'realloc') {
              if (model.length === 0) continue
              const b = model[op.pick % model.length]
              h.transaction(() => {
                const o = h.realloc(b.off, op.size)
                const kept = Math.min(b.size, op.size)
                const bytes = h.mem.bytes(o, kept)
                for (let j = 0; j < kept; j++)
                  if (bytes[j] !== b.fill) throw new Error(`realloc lost byte ${j}`)
                write(h, o, op.size, op.fill)
                b.off = o
                b.size = op.size
                b.fill = op.fill
              })
            } else if (op.t === 'reopen') {
              h.close()
              h = openHeap(file)
            } else {
              // a transaction that allocates, frees and writes, then throws: nothing changes
              expect(() =>
                h.transaction(() => {
                  for (const s of op.sizes) write(h, h.alloc(s), s, 0xee)
                  for (const b of model.slice(0, 3)) h.free(b.off)
                  for (const b of model.slice(3, 5)) write(h, h.realloc(b.off, b.size * 2 + 1), 1, 0xee)
                  throw new Error('rollback')
                }),
              ).toThrow('rollback')
            }
            verify(h, model)
          }
          h.close()
          h = openHeap(file)
          verify(h, model)
        } finally {
          h.close()
        }
      }),
      { numRuns: 150 },
    )
  })
})
