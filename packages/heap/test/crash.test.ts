import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('../scripts/crash.mjs', import.meta.url))

describe('7. kill -9 during heavy alloc/free/realloc', () => {
  it('7.1 200 trials: after recovery check() is clean and every block and byte is accounted for', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [script, '--trials', '200', '--jobs', '4', '--json'],
      {
        timeout: 240_000,
        maxBuffer: 1 << 24,
      },
    )
    const s = JSON.parse(stdout.trim().split('\n').pop()!)
    // a failure lists the trial, its seed (rerun: node scripts/crash.mjs --seed S) and the problems
    expect(s.failures).toEqual([])
    expect(s.trials).toBe(200)
    // most kills land inside a transaction, so recovery is exercised
    expect(s.recovered).toBeGreaterThan(50)
  }, 250_000)
})
