import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openHeap } from '@persist/heap'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
const worker = fileURLToPath(new URL('./fixtures/mp-worker.mjs', import.meta.url))

function run(
  file: string,
  seed: number,
  iters: number,
): Promise<{ allocs: number; frees: number; mismatches: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [worker, file, String(seed), String(iters)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => {
      out += d
    })
    c.stderr.on('data', (d) => {
      err += d
    })
    c.on('error', reject)
    c.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker exit ${code}: ${err}`)),
    )
  })
}

describe('6. several processes share one heap', () => {
  it('6.1 4 processes alloc/free concurrently into a shared table: no overlap, exact accounting', async () => {
    const file = join(dir, 'mp.persist')
    const SLOTS = 512
    const ENT = 24
    const h = openHeap(file)
    const table = h.alloc(SLOTS * ENT, { zero: true })
    h.setRoot(1, table)
    h.close()
    const results = await Promise.all([1, 2, 3, 4].map((w) => run(file, w * 7919, 1500)))
    const g = openHeap(file)
    expect(g.check()).toEqual([])
    let live = 0
    const blocks = new Map<number, number>([[table, g.usableSize(table)]])
    g.transaction(() => {
      for (let i = 0; i < SLOTS; i++) {
        const e = table + ENT * i
        const off = g.mem.f64(e)
        if (off === 0) continue
        live++
        const size = g.mem.f64(e + 8)
        const fill = g.mem.u32(e + 16)
        expect(blocks.has(off)).toBe(false)
        blocks.set(off, g.usableSize(off))
        expect(g.usableSize(off)).toBeGreaterThanOrEqual(size)
        expect(g.mem.bytes(off, size).every((b) => b === fill)).toBe(true)
      }
    })
    const allocs = results.reduce((a, r) => a + r.allocs, 0)
    const frees = results.reduce((a, r) => a + r.frees, 0)
    expect(results.every((r) => r.mismatches === 0)).toBe(true)
    expect(allocs - frees).toBe(live)
    expect(frees).toBeGreaterThan(1000) // many blocks were freed, most by another process than their allocator
    const heapBlocks = [...g.blocks()].sort((a, b) => a - b)
    expect(heapBlocks).toEqual([...blocks.keys()].sort((a, b) => a - b))
    for (let i = 1; i < heapBlocks.length; i++)
      expect(heapBlocks[i - 1] + blocks.get(heapBlocks[i - 1])!).toBeLessThanOrEqual(heapBlocks[i])
    const st = g.stats()
    expect(st.blocksLive).toBe(live + 1)
    expect(st.bytesLive).toBe([...blocks.values()].reduce((a, b) => a + b, 0))
    g.close()
  })
})
