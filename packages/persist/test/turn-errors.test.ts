// A commit that fails at the end of a turn (no caller to throw to): onCommitError,
// or an unhandled rejection. Real processes, real I/O failures (the pager's fault
// injection PERSIST_IO_FAIL makes the N-th fdatasync of 'full' mode fail with EIO).
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { open } from '@persist/persist'
import { afterAll, describe, expect, it } from 'vitest'
import { fixtures, tempDir } from './helpers.js'

const t = tempDir('persist-turn-errors-')
afterAll(() => t.cleanup())

function run(file: string, mode: 'handler' | 'none') {
  return spawnSync(process.execPath, [join(fixtures, 'turn-commit-error.mjs'), file, mode], {
    env: { ...process.env, PERSIST_IO_FAIL: 'fsync:6' },
    encoding: 'utf8',
    timeout: 60_000,
  })
}

describe('a failing end-of-turn commit', () => {
  it('goes to onCommitError; the process goes on and the poisoned handle refuses writes', () => {
    const file = t.file('handler.persist')
    const r = run(file, 'handler')
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.errors).toHaveLength(1)
    expect(out.errors[0].code).toBe('PERSIST_IO')
    expect(out.errors[0].message).toMatch(/durable failed .*close it and open the store again/)
    expect(out.after).toBe('PERSIST_IO')
    // reopened, the store is consistent and holds every increment before the failure
    const s = open(file, { durability: 'full' })
    expect(s.check()).toEqual([])
    expect(s.root.n).toBeGreaterThanOrEqual(1)
    s.close()
  })
  it('without a handler is an unhandled rejection: the process exits 1 with the PersistError', () => {
    const r = run(t.file('none.persist'), 'none')
    expect(r.status).toBe(1)
    expect(r.signal).toBeNull()
    expect(r.stderr).toMatch(/PersistError/)
    expect(r.stderr).toMatch(/PERSIST_IO/)
  })
  it('onCommitError must be a function', () => {
    expect(() => open(t.file('x.persist'), { onCommitError: 1 as never })).toThrow(TypeError)
  })
})
