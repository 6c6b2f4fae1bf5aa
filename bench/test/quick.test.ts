// Keeps the benchmark suite working: runs every workload at its tiny --quick size
// and checks that each completed and that the report and plots were written. No
// thresholds: speed claims come from the full run's report, never from a test.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { workloads } from '../workloads/index.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const runMjs = resolve(here, '../run.mjs')
const out = mkdtempSync(join(tmpdir(), 'persist-bench-quick-'))

afterAll(() => rmSync(out, { recursive: true, force: true }))

// Asynchronous on purpose: a worker blocked for minutes in spawnSync cannot answer
// vitest's RPC ("Timeout calling onTaskUpdate").
function run(
  args: string[],
  timeoutMs: number,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}

describe('bench/run.mjs --quick', () => {
  it('runs every workload and writes the report with plots', async () => {
    const r = await run([runMjs, '--quick', '--out', out], 170_000)
    const log = `${r.stdout}\n${r.stderr}`
    expect(r.status, log).toBe(0)
    expect(log).toContain(`${workloads.length} of ${workloads.length} workloads completed`)
    const report = readFileSync(join(out, 'benchmarks.md'), 'utf8')
    for (const w of workloads) {
      // Every workload has its section with a table (at least one peer row measured).
      expect(report, w.id).toContain(`<a id="${w.id}"></a>`)
      const section = report.split(`<a id="${w.id}"></a>`)[1].split('<a id=')[0]
      expect(section, w.id).not.toContain('**FAILED**')
      expect(section, w.id).toMatch(/\| peer \| [0-9]/)
    }
    expect(report).toContain('## Machine and versions')
    expect(report).toMatch(/\| lmdb \| 3\.5\.6 \|/)
    const svgs = readdirSync(join(out, 'bench')).filter((f) => f.endsWith('.svg'))
    expect(svgs.length).toBeGreaterThanOrEqual(workloads.length - 1)
    for (const f of svgs) expect(readFileSync(join(out, 'bench', f), 'utf8')).toMatch(/^<svg/)
    expect(existsSync(join(out, 'bench', 'counter.svg'))).toBe(true)
  }, 180_000)

  it('--only selects by group and rejects unknown groups', () => {
    const list = spawnSync(process.execPath, [runMjs, '--only', 'heap', '--list'], { encoding: 'utf8' })
    expect(list.status).toBe(0)
    const ids = list.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0])
    expect(ids).toEqual(workloads.filter((w) => w.groups.includes('heap')).map((w) => w.id))
    const bad = spawnSync(process.execPath, [runMjs, '--only', 'nope', '--list'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('unknown group or workload: nope')
  })
})
