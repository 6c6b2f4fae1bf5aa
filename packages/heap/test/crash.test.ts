import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('../scripts/crash.mjs', import.meta.url))

/** Runs the harness; resolves with its JSON summary (also when it exits non-zero). */
function harness(args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [script, ...args, '--json'],
      { timeout: 240_000, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? ''
        if (last.startsWith('{')) resolve(JSON.parse(last))
        else reject(new Error(`crash harness failed: ${err?.message}\n${stderr}`))
      },
    )
  })
}

describe('7. kill -9 during heavy alloc/free/realloc', () => {
  it('7.1 200 trials: after recovery check() is clean and every block and byte is accounted for', async () => {
    const s = await harness(['--trials', '200', '--jobs', '4'])
    // a failure lists the trial, its seed (rerun: node scripts/crash.mjs --seed S) and the problems
    expect(s.failures).toEqual([])
    expect(s.trials).toBe(200)
    // most kills land inside a transaction, so recovery is exercised
    expect(s.recovered).toBeGreaterThan(50)
  }, 250_000)
})
