import { spawn } from 'node:child_process'
import { chmodSync, closeSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { openPager, PAGE_SIZE, type Pager } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir('persist-group-')
let n = 0
const fresh = () => join(dir, `g${n++}.persist`)
const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name)

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  out: string
  err: string
}
function run(script: string, args: string[], env: Record<string, string> = {}, asUser = {}): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [fixture(script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      ...asUser,
    })
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (err += d))
    c.on('exit', (code, signal) => resolve({ code, signal, out, err }))
  })
}
const lastLine = (s: string) => Number(s.trim().split('\n').filter(Boolean).at(-1) ?? 0)
/** What fn threw ({} if it returned). */
function thrown(fn: () => void): { code?: string; message?: string } {
  try {
    fn()
  } catch (e) {
    return e as { code?: string; message?: string }
  }
  return {}
}

function counterStore(path: string): Pager {
  const p = openPager(path, { durability: 'full' })
  p.transaction(() => {
    const g = p.allocPages(1)
    p.mem.bytes(g * PAGE_SIZE, PAGE_SIZE).fill(0)
    p.setSlot(1, g)
  })
  return p
}
/** [shared, own0, own1, ...] read under the lock. */
function counters(p: Pager, procs: number): number[] {
  p.begin()
  const off = p.slot(1) * PAGE_SIZE
  const v = [p.mem.u64(off)]
  for (let i = 0; i < procs; i++) v.push(p.mem.u64(off + 8 * (1 + i)))
  p.commit()
  return v
}

describe("12. durability 'full': group commit", () => {
  it('12.1 4 processes commit at once: exact totals, no partial transaction, same after reopen', async () => {
    const f = fresh()
    const p = counterStore(f)
    const N = 60
    const runs = await Promise.all([0, 1, 2, 3].map((i) => run('full-group.mjs', [f, String(i), String(N)])))
    for (const r of runs) expect(r.code, r.err).toBe(0)
    expect(counters(p, 4)).toEqual([4 * N, N, N, N, N])
    expect(p.check()).toEqual([])
    p.close()
    const q = openPager(f, { durability: 'full' }) // first opener: replays whatever the log holds
    expect(counters(q, 4)).toEqual([4 * N, N, N, N, N])
    expect(q.check()).toEqual([])
    q.close()
  })

  it('12.2 kill -9 of a committer between its unlock and its log sync, and of one between its sync and its store writes: nothing committed is lost, nothing partial is visible', async () => {
    const f = fresh()
    const p = counterStore(f)
    const N = 60
    const K0 = 17 // process 0 dies inside commit 17, after publishing its record (F12), before any sync
    const K1 = 23 // process 1 dies inside commit 23, after its record is durable, before applying it
    const runs = await Promise.all([
      run('full-group.mjs', [f, '0', String(N)], { PERSIST_TEST_DIE: `unlocked:${K0}` }),
      run('full-group.mjs', [f, '1', String(N)], { PERSIST_TEST_DIE: `synced:${K1}` }),
      run('full-group.mjs', [f, '2', String(N)]),
      run('full-group.mjs', [f, '3', String(N)]),
    ])
    expect(runs[0].signal).toBe('SIGKILL')
    expect(runs[1].signal).toBe('SIGKILL')
    expect(lastLine(runs[0].out)).toBe(K0 - 1) // commits that returned
    expect(lastLine(runs[1].out)).toBe(K1 - 1)
    expect(runs[2].code, runs[2].err).toBe(0)
    expect(runs[3].code, runs[3].err).toBe(0)
    // The dead processes' last records were published: the next sync covered them and
    // the next applier applied them (F12, F13): commits K0 and K1 are in, whole.
    const v = counters(p, 4)
    expect(v).toEqual([K0 + K1 + 2 * N, K0, K1, N, N])
    expect(p.check()).toEqual([])
    p.close()
    const q = openPager(f, { durability: 'full' })
    expect(counters(q, 4)).toEqual(v)
    expect(q.check()).toEqual([])
    q.close()
  })

  it('12.3 a read-only opener sees a commit whose writer died after its commit point, before its store writes (log overlay)', async () => {
    const f = fresh()
    const keep = counterStore(f) // keeps the store open: nobody is a first opener below
    const off = keep.slot(1) * PAGE_SIZE
    const r = await run('full-group.mjs', [f, '0', '5'], { PERSIST_TEST_DIE: 'synced:3' })
    expect(r.signal).toBe('SIGKILL')
    expect(lastLine(r.out)).toBe(2)
    // the store file itself still holds 2: commit 3 is durable only in the log
    const b = Buffer.alloc(8)
    const fd = openSync(f, 'r')
    readSync(fd, b, 0, 8, off)
    closeSync(fd)
    expect(Number(b.readBigUInt64LE(0))).toBe(2)
    // readonly: true (takes the lock, overlays [applied, written))
    const ro = await run('full-ro.mjs', [f])
    expect(ro.code, ro.err).toBe(0)
    expect(JSON.parse(ro.out)).toEqual({ value: 3, problems: [] })
    // a read-only file (no lock: overlays every valid record of the epoch); as root
    // permissions are not enforced, so the reader runs as an unprivileged user
    const d = join(dir, 'ro')
    mkdirSync(d, { mode: 0o755 })
    chmodSync(dir, 0o755)
    chmodSync(f, 0o444)
    chmodSync(`${f}-wal`, 0o444)
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
    const fr = await run('full-ro.mjs', [f], {}, asUser)
    expect(fr.code, fr.err).toBe(0)
    expect(JSON.parse(fr.out)).toEqual({ value: 3, problems: [] })
    chmodSync(f, 0o600)
    chmodSync(`${f}-wal`, 0o600)
    // the read-only openers changed nothing: the store file still lacks commit 3 ...
    const fd2 = openSync(f, 'r')
    readSync(fd2, b, 0, 8, off)
    closeSync(fd2)
    expect(Number(b.readBigUInt64LE(0))).toBe(2)
    // a read-only handle in this process: its transaction overlays commit 3 (page 0
    // included), its commit drops the overlay, so lock-free txid polling keeps working
    const rh = openPager(f, { readonly: true })
    rh.begin()
    expect(rh.mem.u64(off)).toBe(3)
    const t3 = rh.txid
    rh.commit()
    expect(rh.mem.u64(off)).toBe(2) // outside a transaction: the store file (page cache)
    expect(rh.txid).toBe(t3 - 1)
    // ... until a writer's begin() applies it
    keep.begin()
    expect(keep.mem.u64(off)).toBe(3)
    keep.commit()
    expect(rh.txid).toBe(t3)
    rh.close()
    keep.close()
  })

  it('12.4 lock format: a lock area of another format is refused while others have the store open, re-initialised by a first opener', () => {
    const f = fresh()
    const setFormat = (v: number) => {
      const fd = openSync(f, 'r+')
      const b = Buffer.alloc(4)
      b.writeUInt32LE(v)
      writeSync(fd, b, 0, 4, 256) // lk_format (FORMAT.md: header offset 256)
      closeSync(fd)
    }
    const getFormat = () => {
      const fd = openSync(f, 'r')
      const b = Buffer.alloc(4)
      readSync(fd, b, 0, 4, 256)
      closeSync(fd)
      return b.readUInt32LE(0)
    }
    const p = counterStore(f)
    expect(getFormat()).toBe(4)
    setFormat(1) // as if the first opener had been an older @persist/pager
    const err = thrown(() => openPager(f, { durability: 'full' }).close())
    expect(err.code).toBe('PERSIST_VERSION')
    expect(err.message).toMatch(/lock format 1; this library uses lock format 4/)
    setFormat(3)
    p.close()
    setFormat(1) // stale lock area of a closed store: the first opener re-initialises it
    const q = openPager(f, { durability: 'full' })
    expect(getFormat()).toBe(4)
    expect(counters(q, 1)).toEqual([0, 0])
    q.close()
  })

  it('12.5 kill -9 of a sync leader while it gathers a group (holding the sync mutex): the others go on, its published record is committed, totals exact', async () => {
    // The leader gathers only after a sync that covered several records: run until
    // process 0 has been killed in its 2nd gathering wait (a few attempts: on an idle
    // machine every sync could happen to cover one record).
    let killed = false
    for (let attempt = 0; attempt < 4 && !killed; attempt++) {
      const f = fresh()
      const p = counterStore(f)
      const N = 150
      const runs = await Promise.all([
        run('full-group.mjs', [f, '0', String(N)], { PERSIST_TEST_DIE: 'gathering:2' }),
        run('full-group.mjs', [f, '1', String(N)]),
        run('full-group.mjs', [f, '2', String(N)]),
        run('full-group.mjs', [f, '3', String(N)]),
      ])
      for (const r of runs.slice(1)) expect(r.code, r.err).toBe(0)
      const v = counters(p, 4)
      if (runs[0].signal === 'SIGKILL') {
        killed = true
        // it died inside commit k+1 after publishing its record (F12): the next sync covered it
        const k = lastLine(runs[0].out)
        expect(v).toEqual([k + 1 + 3 * N, k + 1, N, N, N])
      } else {
        expect(runs[0].code, runs[0].err).toBe(0)
        expect(v).toEqual([4 * N, N, N, N, N])
      }
      expect(p.check()).toEqual([])
      p.close()
    }
    expect(killed).toBe(true)
  })

  it('12.6 CRC32C: a log written with the SSE4.2 instruction is replayed with the table, and the other way round', async () => {
    for (const [writer, reader] of [
      [{}, { PERSIST_CRC_TABLE: '1' }],
      [{ PERSIST_CRC_TABLE: '1' }, {}],
    ] as Record<string, string>[][]) {
      const f = fresh()
      counterStore(f).close()
      // commit 5 is durable in the log only: the writer dies before writing the store
      const w = await run('full-group.mjs', [f, '0', '9'], { ...writer, PERSIST_TEST_DIE: 'synced:5' })
      expect(w.signal).toBe('SIGKILL')
      expect(lastLine(w.out)).toBe(4)
      // the reader is the first opener: it replays the log, validating every record's CRC
      // (a mismatch ends the log there: commit 5 would be lost)
      const r = await run('full-group.mjs', [f, '1', '0'], reader)
      expect(r.code, r.err).toBe(0)
      const q = openPager(f, { durability: 'full' })
      expect(counters(q, 1)).toEqual([5, 5])
      q.close()
    }
  })

  it('12.7 a read-only first opener leaves the durability mode to the first writer (F10): a later full writer claims it, commits, dies after its commit point; the reader sees it; a process-mode writer is refused', async () => {
    const f = fresh()
    counterStore(f).close() // the store and its log exist; nobody has it open
    const ro = openPager(f, { readonly: true }) // first opener: must not fix the mode
    // the child claims 'full' mode, commits 1-4, and dies after commit 5 is durable in
    // the log, before writing the store
    const w = await run('full-group.mjs', [f, '0', '9'], { PERSIST_TEST_DIE: 'synced:5' })
    expect(w.signal, w.err).toBe('SIGKILL')
    expect(lastLine(w.out)).toBe(4)
    expect(counters(ro, 1)).toEqual([5, 5]) // the overlay of the log (F16)
    const err = thrown(() => openPager(f, { durability: 'process' }).close())
    expect(err.code).toBe('PERSIST_INVALID')
    expect(err.message).toMatch(/open in durability 'full' mode by another process/)
    const p = openPager(f, { durability: 'full' })
    expect(counters(p, 1)).toEqual([5, 5])
    p.close()
    ro.close()
    // and the other way round: a process-mode writer claims; a full writer is refused
    const g = fresh()
    counterStore(g).close()
    const ro2 = openPager(g, { readonly: true })
    const pw = openPager(g, { durability: 'process' })
    pw.transaction(() => {
      const off = pw.slot(1) * PAGE_SIZE
      pw.willWrite(off, 8)
      pw.mem.setU64(off, 7)
    })
    expect(() => openPager(g, { durability: 'full' })).toThrow(/open in durability 'process' mode/)
    expect(counters(ro2, 0)).toEqual([7])
    pw.close()
    ro2.close()
  })

  it('12.8 the last handle to close a full store checkpoints (F20): the next first opener replays no record; after a kill -9 it replays them', async () => {
    /** Records replayed by the first opener of f (the 'E' event of its I/O trace). */
    const replayedAtOpen = (f: string) => {
      const trace = join(dir, `trace-${n++}`)
      process.env.PERSIST_IO_TRACE = trace
      try {
        openPager(f, { durability: 'full' }).close()
      } finally {
        delete process.env.PERSIST_IO_TRACE
      }
      const fd = openSync(trace, 'r')
      const tr = Buffer.alloc(1 << 20)
      const len = readSync(fd, tr, 0, tr.length, 0)
      closeSync(fd)
      const ends: number[] = []
      for (let q = 0; q + 16 <= len; q += 16 + tr.readUInt32LE(q + 4))
        if (tr[q] === 0x45) ends.push(Number(tr.readBigUInt64LE(q + 8))) // 'E': u64 = records applied
      expect(ends.length).toBe(1)
      return ends[0]
    }
    const f = fresh()
    const p = counterStore(f)
    const q = openPager(f, { durability: 'full' })
    const off = p.slot(1) * PAGE_SIZE
    for (let i = 0; i < 30; i++)
      p.transaction(() => {
        p.willWrite(off, 8)
        p.mem.setU64(off, p.mem.u64(off) + 1)
      })
    p.close() // q still has it open: no checkpoint
    q.close() // the last closer
    expect(replayedAtOpen(f)).toBe(0)
    // the other way: the last writer dies; its records are replayed at the next open
    const w = await run('full-group.mjs', [f, '0', '20'], { PERSIST_TEST_DIE: 'synced:20' })
    expect(w.signal).toBe('SIGKILL')
    expect(replayedAtOpen(f)).toBe(20)
    const r = openPager(f, { durability: 'full' })
    expect(counters(r, 1)).toEqual([50, 20])
    expect(r.check()).toEqual([])
    r.close()
  })
  it('12.9 kept pages (F21): three handles commit, abort and read the same pages in random order; every begin() sees exactly the latest commit of any handle (also past the 1,024-page cap)', () => {
    const f = fresh()
    const hs = [openPager(f, { durability: 'full' })]
    const PAGES = 8
    const BIG = 1200 // pages: a commit writing 300 of them now and then passes the cap
    let first = 0
    let big = 0
    hs[0].transaction(() => {
      first = hs[0].allocPages(PAGES)
      hs[0].mem.bytes(first * PAGE_SIZE, PAGES * PAGE_SIZE).fill(0)
    })
    hs[0].transaction(() => {
      big = hs[0].allocPages(BIG) // fresh: its first record alone is over the cap
      hs[0].mem.bytes(big * PAGE_SIZE, BIG * PAGE_SIZE).fill(0)
    })
    hs.push(openPager(f, { durability: 'full' }), openPager(f, { durability: 'full' }))
    // two words per small page: at its start and in its last line; one per big page
    const at = (pg: number, w: number) => (first + pg) * PAGE_SIZE + (w ? PAGE_SIZE - 8 : 0)
    const model = new Array(PAGES * 2).fill(0)
    const bigModel = new Map<number, number>() // big page -> value at its start
    let seed = 0x2545f491
    const rnd = (k: number) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % k
    }
    let value = 1
    let stale = 0
    for (let step = 0; step < 600; step++) {
      const h = hs[rnd(3)]
      h.begin()
      for (let i = 0; i < model.length; i++) if (h.mem.u64(at(i >> 1, i & 1)) !== model[i]) stale++
      for (const [pg, v] of bigModel) if (h.mem.u64((big + pg) * PAGE_SIZE) !== v) stale++
      const writes: [number, number][] = []
      for (let k = rnd(4); k > 0; k--) {
        const i = rnd(model.length)
        const v = value++
        h.willWrite(at(i >> 1, i & 1), 8)
        h.mem.setU64(at(i >> 1, i & 1), v)
        writes.push([i, v])
      }
      const bigWrites: [number, number][] = []
      if (rnd(15) === 0)
        for (let k = 0; k < 300; k++) {
          const pg = rnd(BIG)
          const v = value++
          h.willWrite((big + pg) * PAGE_SIZE, 8)
          h.mem.setU64((big + pg) * PAGE_SIZE, v)
          bigWrites.push([pg, v])
        }
      if (rnd(10) === 0) h.abort()
      else {
        h.commit()
        for (const [i, v] of writes) model[i] = v
        for (const [pg, v] of bigWrites) bigModel.set(pg, v)
      }
    }
    expect(stale).toBe(0)
    expect(bigModel.size).toBeGreaterThan(1000) // the big steps really ran (and spread over the area)
    // and after reopening: the file holds the model
    for (const h of hs) h.close()
    const r = openPager(f, { durability: 'full' })
    r.begin()
    for (let i = 0; i < model.length; i++) expect(r.mem.u64(at(i >> 1, i & 1))).toBe(model[i])
    for (const [pg, v] of bigModel) expect(r.mem.u64((big + pg) * PAGE_SIZE)).toBe(v)
    r.commit()
    expect(r.check()).toEqual([])
    r.close()
  })
})
