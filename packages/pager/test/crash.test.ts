import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// The kill -9 harness (scripts/crash.mjs) in its CI size: 300 trials.
describe('9. crash safety', () => {
  it('9.1 300 kill -9 trials: 0 corrupt, 0 lost', async () => {
    const script = join(import.meta.dirname, '..', 'scripts', 'crash.mjs')
    const { code, out, err } = await new Promise<{ code: number | null; out: string; err: string }>(
      (resolve) => {
        const c = spawn(process.execPath, [script, '--trials', '300', '--parallel', '2', '--max-ms', '100'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let out = ''
        let err = ''
        c.stdout.on('data', (d) => (out += d))
        c.stderr.on('data', (d) => (err += d))
        c.on('exit', (code) => resolve({ code, out, err }))
      },
    )
    console.log(out.trim())
    expect(err).toBe('')
    expect(out).toMatch(/^300 trials, 0 corrupt, 0 lost/)
    expect(code).toBe(0)
    // The harness must actually hit transactions in flight and commit a lot.
    const m = /\((\d+) commits reported, (\d+) kills inside a transaction/.exec(out)
    expect(Number(m?.[1])).toBeGreaterThan(1000)
    expect(Number(m?.[2])).toBeGreaterThan(30)
  }, 300_000)
})
