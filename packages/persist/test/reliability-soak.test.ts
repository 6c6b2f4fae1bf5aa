// Soak (scripts/soak.mjs, 20 s at CI size: 8 processes, mixed operations, random kill -9
// and restarts; exact totals, check() clean) and the fast-check model of the API with
// close/reopen and crash steps (scripts/model.mjs, 200 runs).
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const scripts = fileURLToPath(new URL('../scripts/', import.meta.url))

function run(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(scripts, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    p.on('close', (code) => resolve({ code, out }))
  })
}

describe('reliability: soak and model', () => {
  it('soak: 8 processes × 20 s with random kill -9 and restarts: exact totals, invariants, check() clean', async () => {
    const r = await run('soak.mjs', ['--seconds', '20', '--procs', '8'])
    const m = r.out.match(
      /soak: 8 processes, \d+ s, (\d+) starts, (\d+) kills, (\d+) committed operations.*; (\d+) failures/,
    )
    expect(m, r.out).not.toBeNull()
    expect(Number(m![2])).toBeGreaterThan(5) // kills really happened
    expect(Number(m![3])).toBeGreaterThan(50) // and work was committed
    expect(Number(m![4]), r.out).toBe(0)
    expect(r.code).toBe(0)
  }, 300_000)

  it('fast-check model of the API with close/reopen and kill -9 steps: 200 runs', async () => {
    const r = await run('model.mjs', ['--runs', '200'])
    expect(r.out, r.out).toMatch(/model: 200 runs executed .*: ok/)
    expect(Number(r.out.match(/(\d+) crash steps/)?.[1])).toBeGreaterThan(20)
    expect(r.code).toBe(0)
  }, 900_000)
})
