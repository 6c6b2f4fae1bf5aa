// Untrusted files and hostile environments: bad-files (scripts/bad-files.mjs, full set),
// full-disk (scripts/full-disk.mjs on a real tmpfs; CI runs as root, so a failed mount
// FAILS with the reason instead of skipping), new-file permissions, class names.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { open } from '@persist/persist'
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

describe('reliability: files', () => {
  // one run of the full set, shared by the two assertions below
  let badFiles: Promise<{ code: number | null; out: string }> | undefined
  const badFilesRun = () => {
    badFiles ??= run('bad-files.mjs', [])
    return badFiles
  }
  const counts = (out: string) => {
    const m = out.match(
      /bad-files: (\d+) cases, (\d+) failures \((\d+) signals\/hangs, (\d+) code loads, (\d+) untyped errors\)/,
    )
    expect(m, out).not.toBeNull()
    const [cases, failures, signals, loads, untyped] = m!.slice(1).map(Number)
    return { cases, failures, signals, loads, untyped }
  }

  it('bad files (random, truncated at every 4 KiB and header field, flipped header/heap bytes, crafted offsets, journal, class names): zero signals, zero hangs, no code loaded by class names', async () => {
    const r = await badFilesRun()
    const c = counts(r.out)
    expect(c.cases).toBeGreaterThan(2000)
    expect(c.signals, r.out).toBe(0) // no SIGSEGV/SIGBUS/SIGABRT, no hang
    expect(c.loads, r.out).toBe(0)
    expect(r.out).toMatch(/class names\s+2\s+.*PERSIST_UNKNOWN_CLASS/)
  }, 900_000)

  // Was a known bug (docs/reliability.md "Found" 2): crafted offsets surfaced as
  // RangeError/TypeError. The objects layer now checks every offset, length and count
  // it reads from the file (O11 in packages/objects/src/objects.ts).
  it('bad files: every error is a PersistError (no TypeError/RangeError from a damaged file)', async () => {
    const r = await badFilesRun()
    const c = counts(r.out)
    expect(
      c.untyped,
      r.out
        .split('\n')
        .filter((l) => l.startsWith('FAIL'))
        .join('\n'),
    ).toBe(0)
    expect(r.code).toBe(0)
  }, 900_000)

  it('full disk on an 8 MiB tmpfs: PERSIST_NOSPC, the failing transaction rolled back, committed data intact, usable after freeing space', async () => {
    const r = await run('full-disk.mjs', ['--rounds', '3'])
    // exit 2 = the tmpfs could not be mounted: a failure here (CI runs as root), with the reason
    expect(r.code, r.out).not.toBe(2)
    expect(r.out).toMatch(/round 0: \d+ transactions committed before PERSIST_NOSPC/)
    expect(r.out).toMatch(/full-disk: 3 rounds on a 8 MiB tmpfs, 0 failures/)
    expect(r.code).toBe(0)
  }, 300_000)

  it('new store files are created with mode 0600 regardless of the umask, and { mode } is honoured', () => {
    const dir = mkdtempSync(join(tmpdir(), 'persist-mode-'))
    const old = process.umask(0)
    try {
      open(join(dir, 'a.persist')).close()
      expect(statSync(join(dir, 'a.persist')).mode & 0o777).toBe(0o600)
      open(join(dir, 'b.persist'), { mode: 0o640 }).close()
      expect(statSync(join(dir, 'b.persist')).mode & 0o777).toBe(0o640)
    } finally {
      process.umask(old)
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
