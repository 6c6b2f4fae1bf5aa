// Lock-holder death (scripts/lock-death.mjs) at CI size: 100 kill -9s of a process
// holding the store lock mid-transaction while 3 processes wait. Every waiter must
// proceed within 1 s of the kill and the final totals must be exact.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('../scripts/lock-death.mjs', import.meta.url))

describe('reliability: lock-holder death', () => {
  it('100 kills of the lock holder with 3 waiters: every waiter proceeds within 1 s, totals exact', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [script, '--trials', '100', '--limit-ms', '1000'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      p.stdout.on('data', (d) => (out += d))
      p.stderr.on('data', (d) => (out += d))
      p.on('close', (code) => resolve({ code, out }))
    })
    expect(r.out).toMatch(/lock-death: 100 kills, 100 complete trials, .*total 300, h 100; 0 failures/)
    expect(r.out).not.toMatch(/FAIL/)
    expect(r.code).toBe(0)
  }, 1_200_000)
})
