import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error plain JS script without types
import { runPowerCuts } from '../scripts/crash-power.mjs'

// A file of its own (its own worker process): the harness runs synchronously, and two
// long synchronous tests in one worker can starve vitest's RPC (onTaskUpdate timeout).
describe("11. durability 'full': simulated power cuts, concurrent committers", () => {
  it('11.2 4 concurrent committers (group commit), 200 cuts: 0 corrupt, 0 lost', () => {
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
    const dir = mkdtempSync(join(base, 'persist-power-'))
    const log: string[] = []
    try {
      const res = runPowerCuts({
        trials: 200,
        seed: 4242,
        txns: 50,
        procs: 4,
        recoveryCuts: 0.25,
        dir,
        log: (s: string) => log.push(s),
      })
      expect(log.filter((l) => /CORRUPT|LOST|failed/.test(l))).toEqual([])
      expect(res.commits).toBe(200)
      expect(`${res.trials} cuts, ${res.corrupt} corrupt, ${res.lost} lost`).toBe(
        '200 cuts, 0 corrupt, 0 lost',
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
