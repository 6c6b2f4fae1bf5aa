import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error plain JS script without types
import { runPowerCuts } from '../scripts/crash-power.mjs'

describe("11. durability 'full': simulated power cuts", () => {
  it('11.1 500 cuts (a quarter also inside recovery): 0 corrupt, 0 lost', () => {
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
    const dir = mkdtempSync(join(base, 'persist-power-'))
    const log: string[] = []
    try {
      const res = runPowerCuts({
        trials: 500,
        seed: 12345,
        txns: 300,
        recoveryCuts: 0.25,
        dir,
        log: (s: string) => log.push(s),
      })
      expect(log.filter((l) => /CORRUPT|LOST|failed/.test(l))).toEqual([])
      expect(res.commits).toBe(300)
      expect(res.inRecovery).toBeGreaterThan(50)
      expect(`${res.trials} cuts, ${res.corrupt} corrupt, ${res.lost} lost`).toBe(
        '500 cuts, 0 corrupt, 0 lost',
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
