import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { freshPath, open, tempDir, tx } from './helpers.js'

const dir = tempDir()
const child = fileURLToPath(new URL('./fixtures/incr.mjs', import.meta.url))

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
    p.on('error', reject)
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exited with ${code}`))))
  })
}

describe('several processes on one store', () => {
  it('3 processes × 1500 increments of root.x while adding and deleting keys: exact total, every key right', async () => {
    const path = freshPath(dir)
    const o = open(path)
    tx(o, () => o.dictSet(o.rootOff, 'x', 0))
    const N = 1500
    await Promise.all([0, 1, 2].map((id) => run([path, String(id), String(N)])))
    o.begin()
    expect(o.dictGet(o.rootOff, 'x')).toBe(3 * N)
    const expected = new Set<string>()
    for (const id of [0, 1, 2])
      for (let i = 0; i < N; i++) {
        if (i % 7 === 0) expected.add(`k${id}_${i}`)
        if (i % 11 === 0 && i > 0) expected.delete(`k${id}_${i - 4}`)
      }
    const keys = o.dictKeys(o.rootOff).filter((k) => k !== 'x')
    expect(new Set(keys)).toEqual(expected)
    for (const k of keys) {
      const [id, i] = k.slice(1).split('_')
      expect(o.toJS(o.dictGet(o.rootOff, k))).toEqual({ i: Number(i), s: `value ${i} of ${id}` })
    }
    o.commit()
    expect(o.check()).toEqual([])
    o.close()
  }, 120_000)
})
