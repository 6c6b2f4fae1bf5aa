import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { BEGIN_REMAPPED, openPager, PAGE_SIZE, type Pager } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir('persist-full-')
let n = 0
const fresh = () => join(dir, `f${n++}.persist`)
const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name)

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fixture(script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (err += d))
    c.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}: ${err}`)),
    )
  })
}

function counterStore(path: string): Pager {
  const p = openPager(path, { durability: 'full' })
  p.transaction(() => p.setSlot(1, p.allocPages(1)))
  return p
}
const counter = (p: Pager) => p.mem.u64(p.slot(1) * PAGE_SIZE)

describe("10. durability 'full'", () => {
  it('10.1 round trip: commits are visible, survive reopen, and the log exists', () => {
    const f = fresh()
    const p = counterStore(f)
    expect(existsSync(`${f}-wal`)).toBe(true)
    const off = p.slot(1) * PAGE_SIZE
    for (let i = 0; i < 100; i++) {
      p.begin()
      p.willWrite(off, 8)
      p.mem.setU64(off, p.mem.u64(off) + 1)
      p.commit()
    }
    expect(counter(p)).toBe(100)
    expect(p.txid).toBe(101)
    expect(p.check()).toEqual([])
    p.close()
    const q = openPager(f, { durability: 'full' })
    expect(counter(q)).toBe(100)
    expect(q.check()).toEqual([])
    q.close()
    // a 'process' opener after the last 'full' handle closed sees the same state
    const r = openPager(f)
    expect(counter(r)).toBe(100)
    r.close()
  })

  it('10.2 abort and savepoints discard private writes (also allocations)', () => {
    const f = fresh()
    const p = counterStore(f)
    const off = p.slot(1) * PAGE_SIZE
    const free0 = p.stats().freePages
    p.begin()
    p.willWrite(off, 8)
    p.mem.setU64(off, 7)
    p.allocPages(5)
    p.abort()
    expect(counter(p)).toBe(0)
    expect(p.stats().freePages).toBe(free0)
    p.begin()
    p.willWrite(off, 8)
    p.mem.setU64(off, 1)
    const s = p.savepoint()
    p.willWrite(off, 8)
    p.mem.setU64(off, 99)
    const g = p.allocPages(3)
    p.rollbackTo(s)
    expect(counter(p)).toBe(1)
    expect(p.runLength(g)).toBe(0)
    p.commit()
    expect(counter(p)).toBe(1)
    expect(p.check()).toEqual([])
    p.close()
    const q = openPager(f, { durability: 'full' })
    expect(counter(q)).toBe(1)
    expect(q.check()).toEqual([])
    q.close()
  })

  it('10.3 growth: a large allocation grows the file and survives reopen', () => {
    const f = fresh()
    const p = counterStore(f)
    p.begin()
    const g = p.allocPages(3000)
    p.mem.bytes(g * PAGE_SIZE, 3000 * PAGE_SIZE).fill(0xab)
    p.setSlot(2, g)
    p.commit()
    p.close()
    const q = openPager(f, { durability: 'full' })
    const b = q.mem.bytes(q.slot(2) * PAGE_SIZE, 3000 * PAGE_SIZE)
    expect(b.every((x) => x === 0xab)).toBe(true)
    expect(q.runLength(q.slot(2))).toBe(3000)
    expect(q.check()).toEqual([])
    q.close()
  })

  it('10.4 another process sees commits and growth; two processes increment to an exact total', async () => {
    const f = fresh()
    const p = counterStore(f)
    await Promise.all([run('full-incr.mjs', [f, '300']), run('full-incr.mjs', [f, '300'])])
    p.begin()
    expect(counter(p)).toBe(600)
    p.commit()
    // this handle's own commit is visible to a later child
    p.begin()
    const g = p.allocPages(2000)
    p.setSlot(2, g)
    p.commit()
    await run('full-incr.mjs', [f, '10'])
    const flags = p.begin()
    expect(flags & BEGIN_REMAPPED).toBe(0)
    expect(counter(p)).toBe(610)
    p.commit()
    expect(p.check()).toEqual([])
    p.close()
  })

  it('10.5 mixing modes is refused with PERSIST_INVALID, both ways', () => {
    const f = fresh()
    const p = openPager(f)
    let err: { code?: string } = {}
    try {
      openPager(f, { durability: 'full' })
    } catch (e) {
      err = e as { code?: string }
    }
    expect(err.code).toBe('PERSIST_INVALID')
    p.close()
    const q = openPager(f, { durability: 'full' })
    expect(() => openPager(f)).toThrow(/same durability/)
    q.close()
  })

  it('10.6 kill -9 during commits: every reported commit is present, check() clean', async () => {
    const f = fresh()
    counterStore(f).close()
    // trials 0-2: this process keeps the store open, so a killed holder is recovered by
    // begin() (EOWNERDEAD / lk_wal_flags); trials 3-4: by the next first opener
    let keep: Pager | null = openPager(f, { durability: 'full' })
    for (let trial = 0; trial < 5; trial++) {
      if (trial === 3) {
        keep?.close()
        keep = null
      }
      const c = spawn(process.execPath, [fixture('full-incr.mjs'), f, '1000000', '1'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let last = 0
      let buf = ''
      await new Promise<void>((resolve) => {
        c.stdout.on('data', (d) => {
          buf += d
          const lines = buf.split('\n')
          buf = lines.pop() ?? ''
          for (const l of lines) if (l) last = Number(l)
          if (last > 50 + trial * 30 && !c.killed) {
            c.kill('SIGKILL')
          }
        })
        c.on('exit', () => resolve())
      })
      const p = keep ?? openPager(f, { durability: 'full' })
      p.begin()
      expect(counter(p)).toBeGreaterThanOrEqual(last)
      expect(p.check()).toEqual([])
      p.commit()
      if (!keep) p.close()
    }
  })

  it('10.7 a failed log fdatasync (EIO) throws PERSIST_IO (outcome unknown), refuses further writes; the log is replayed', async () => {
    const f = fresh()
    const keep = counterStore(f) // stays open: the child is not the first opener (no recovery I/O)
    // commits 1 and 2 sync the log once each; the 3rd sync fails. With group commit the
    // record is already published (other processes may have built on it), so it cannot
    // be rolled back: the committer is told its outcome is unknown (F13), never success.
    const out = JSON.parse(await run('full-fault.mjs', [f, '10'], { PERSIST_IO_FAIL: 'fsync:3' }))
    expect(out.committed).toBe(2)
    expect(out.error.code).toBe('PERSIST_IO')
    expect(out.error.message).toMatch(/whether it survives a power cut is unknown/)
    expect(out.error.inTxn).toBe(false)
    expect(out.error.value).toBe(2) // not applied to the store: its sync failed
    expect(out.after).toBe('PERSIST_IO') // the handle is poisoned (F9)
    // the child's next begin() replayed the log (PST_WAL_RECOVER): a new sync, then the
    // record went into the store and the store was synced, so the in-doubt commit is in
    keep.begin()
    expect(counter(keep)).toBe(3)
    expect(keep.check()).toEqual([])
    keep.commit()
    keep.close()
    const p = openPager(f, { durability: 'full' })
    expect(counter(p)).toBe(3)
    expect(p.check()).toEqual([])
    p.close()
  })

  it('10.8 ENOSPC writing the log: PERSIST_NOSPC, transaction rolled back, the handle keeps working', async () => {
    const f = fresh()
    const keep = counterStore(f) // stays open: the child is not the first opener (no recovery I/O)
    // the child's 1st pwrite is commit 1's log record
    const out = JSON.parse(await run('full-fault.mjs', [f, '1'], { PERSIST_IO_FAIL: 'nospc:1' }))
    keep.close()
    expect(out.committed).toBe(0)
    expect(out.error.code).toBe('PERSIST_NOSPC')
    expect(out.error.value).toBe(0)
    expect(out.after).toBe('ok')
    const p = openPager(f, { durability: 'full' })
    expect(counter(p)).toBe(1)
    expect(p.check()).toEqual([])
    p.close()
  })
  it('10.9 a failed store write after the commit point: PERSIST_IO says committed; the next begin() replays the log (the store sees it)', async () => {
    const f = fresh()
    const keep = counterStore(f)
    // the child's 1st pwrite is commit 1's log record (then synced: committed), the 2nd its first store write
    const out = JSON.parse(await run('full-fault.mjs', [f, '3'], { PERSIST_IO_FAIL: 'pwrite:2' }))
    expect(out.committed).toBe(0)
    expect(out.error.code).toBe('PERSIST_IO')
    expect(out.error.message).toMatch(/committed in the log/)
    expect(out.after).toBe('PERSIST_IO')
    // the child's own next begin() replayed the log (lk_wal_flags) before refusing the write
    keep.begin()
    expect(counter(keep)).toBe(1)
    expect(keep.check()).toEqual([])
    keep.commit()
    keep.close()
  })
})
