import { spawn } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { openPager, PAGE_SIZE, PersistError, type PersistErrorCode } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const fresh = () => join(dir, `e${n++}.persist`)

function code(fn: () => unknown): PersistErrorCode | string {
  try {
    fn()
  } catch (e) {
    if (e instanceof PersistError) return e.code
    return `${(e as Error).constructor.name}: ${(e as Error).message}`
  }
  return 'no error'
}
function errorOf(fn: () => unknown): PersistError {
  try {
    fn()
  } catch (e) {
    if (e instanceof PersistError) return e
    throw e
  }
  throw new Error('expected a PersistError')
}

/** A valid, closed store image (33 pages + a few allocated). */
function validStore(): string {
  const f = fresh()
  const p = openPager(f)
  p.transaction(() => p.setSlot(1, p.allocPages(4)))
  p.close()
  return f
}
/** Starts fixtures/holder.mjs on `f` and resolves once it holds the lock mid-transaction. */
async function startHolder(f: string) {
  const c = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'holder.mjs'), f], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  await new Promise<void>((resolve) =>
    c.stdout.on('data', (d) => {
      out += d
      if (out.includes('ready') && !out.includes('go')) {
        out += 'go'
        c.stdin.write('go\n')
      }
      if (out.includes('locked')) resolve()
    }),
  )
  return c
}
function patch(f: string, off: number, bytes: number[] | Buffer): void {
  const fd = openSync(f, 'r+')
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, off)
  closeSync(fd)
}

describe('5. bad files', () => {
  it('5.1 a zero-length file is not a store', () => {
    const f = fresh()
    writeFileSync(f, '')
    expect(code(() => openPager(f))).toBe('PERSIST_NOT_STORE')
  })
  it('5.2 a text file is not a store', () => {
    const f = fresh()
    writeFileSync(f, 'hello world\n'.repeat(1000))
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_NOT_STORE')
    expect(e.message).toMatch(/not a persist store/)
  })
  it('5.3 a store cut inside page 0 is CORRUPT (truncated)', () => {
    const f = fresh()
    writeFileSync(f, readFileSync(validStore()).subarray(0, 100))
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_CORRUPT')
    expect(e.message).toMatch(/truncated/)
  })
  it('5.4 a store shorter than its page count is CORRUPT (truncated)', () => {
    const f = fresh()
    writeFileSync(f, readFileSync(validStore()).subarray(0, 20 * PAGE_SIZE))
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_CORRUPT')
    expect(e.message).toMatch(/truncated/)
  })
  it('5.5 a newer format version is VERSION', () => {
    const f = validStore()
    patch(f, 8, [2, 0, 0, 0])
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_VERSION')
    expect(e.message).toMatch(/format version 2/)
  })
  it('5.6 a foreign byte order or page size is VERSION', () => {
    const f = validStore()
    patch(f, 12, [0x0a, 0x0b, 0x0c, 0x0d])
    expect(code(() => openPager(f))).toBe('PERSIST_VERSION')
    const g = validStore()
    patch(g, 16, [0, 0x20, 0, 0])
    expect(code(() => openPager(g))).toBe('PERSIST_VERSION')
  })
  it('5.7 a journal pointer out of range is CORRUPT', () => {
    const f = validStore()
    patch(f, 56, [0xff, 0xff, 0, 0, 0, 0, 0, 0])
    expect(code(() => openPager(f))).toBe('PERSIST_CORRUPT')
  })
  it('5.8 a damaged pending journal is CORRUPT at open (never applied)', () => {
    const f = validStore()
    patch(f, 17 * PAGE_SIZE + 32, Buffer.alloc(64)) // no entries in the chunk
    patch(f, 64, [3, 0, 0, 0, 0, 0, 0, 0]) // but 3 entries claimed
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_CORRUPT')
    expect(e.message).toMatch(/journal/)
  })
  // A bit flip of hd_jr_entries (header offset 64) must not replay the stale undo
  // entries that committed transactions leave in the journal chunks (I13, END marker).
  function committedStore(): { f: string; expect: (p: ReturnType<typeof openPager>) => void } {
    const f = fresh()
    const p = openPager(f)
    p.transaction(() => p.setSlot(1, p.allocPages(4)))
    for (let t = 1; t <= 5; t++) {
      p.transaction(() => {
        const off = p.slot(1) * PAGE_SIZE
        p.willWrite(off, 4096)
        for (let i = 0; i < 512; i++) p.mem.setU64(off + i * 8, t * 1000 + i)
        p.setSlot(2, t)
      })
    }
    const pages = p.stats().pageCount
    p.close()
    return {
      f,
      expect: (q) => {
        expect(q.slot(2)).toBe(5)
        const off = q.slot(1) * PAGE_SIZE
        for (let i = 0; i < 512; i += 97) expect(q.mem.u64(off + i * 8)).toBe(5000 + i)
        expect(q.stats().pageCount).toBe(pages)
        expect(q.check()).toEqual([])
        expect(q.stats().journalEntries).toBe(0)
      },
    }
  }
  it('5.8b a journal count damaged from 0 replays nothing: the data stays the last commit', () => {
    for (const count of [1, 2, 7, 1000, 2 ** 40]) {
      const s = committedStore()
      const b = Buffer.alloc(8)
      b.writeBigUInt64LE(BigInt(count))
      patch(s.f, 64, b)
      const q = openPager(s.f)
      s.expect(q)
      q.close()
    }
  })
  it('5.8c a journal count damaged upwards mid-transaction rolls back only the real entries', async () => {
    const s = committedStore()
    const c = await startHolder(s.f)
    const dead = new Promise((r) => c.on('exit', r))
    c.kill('SIGKILL')
    await dead
    const fd = openSync(s.f, 'r+')
    const h = Buffer.alloc(8)
    readSync(fd, h, 0, 8, 64)
    const real = Number(h.readBigUInt64LE())
    expect(real).toBeGreaterThan(0) // the holder died with a pending journal
    h.writeBigUInt64LE(BigInt(real + 5))
    writeSync(fd, h, 0, 8, 64)
    closeSync(fd)
    const q = openPager(s.f)
    expect(q.slot(4)).toBe(0) // the holder's write is rolled back
    s.expect(q)
    q.close()
  })
  it('5.9 a journal entry pointing outside the store is CORRUPT', () => {
    const f = validStore()
    const entry = Buffer.alloc(16 + 8)
    entry.writeBigUInt64LE(1n << 40n, 0) // je_off
    entry.writeUInt32LE(8, 8) // je_len
    entry.writeUInt32LE(1, 12) // je_seq
    patch(f, 17 * PAGE_SIZE + 32, entry)
    patch(f, 64, [1, 0, 0, 0, 0, 0, 0, 0])
    expect(code(() => openPager(f))).toBe('PERSIST_CORRUPT')
  })
  it('5.9b a page count that cuts a page-map chunk is CORRUPT (no fault)', () => {
    const f = validStore()
    const span = 262144
    truncateSync(f, (span + 5) * PAGE_SIZE) // sparse: no disk blocks
    const count = Buffer.alloc(8)
    count.writeBigUInt64LE(BigInt(span + 5))
    patch(f, 24, count)
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_CORRUPT')
    expect(e.message).toMatch(/page-map chunk/)
  })
  it('5.10 a directory is INVALID, a missing file with create:false NOT_FOUND', () => {
    const d = join(dir, 'adir')
    mkdirSync(d)
    const e = errorOf(() => openPager(d))
    expect(e.code).toBe('PERSIST_INVALID')
    expect(e.message).toMatch(/directory/)
    expect(code(() => openPager(join(dir, 'missing.persist'), { create: false }))).toBe('PERSIST_NOT_FOUND')
    expect(code(() => openPager(join(dir, 'missing.persist'), { readonly: true }))).toBe('PERSIST_NOT_FOUND')
  })
  it('5.11 check() reports a damaged page map', () => {
    const f = validStore()
    patch(f, 40, [5, 0, 0, 0, 0, 0, 0, 0]) // hd_free_pages = 5, but no page is free
    const p = openPager(f)
    const problems = p.check()
    expect(problems.join('\n')).toMatch(/H3/)
    p.close()
  })
  it('5.12 random damage to header, map and journal never crashes the process', async () => {
    // Build a store with a pending journal (copy taken inside a transaction).
    const src = fresh()
    const p = openPager(src)
    p.transaction(() => {
      const pg = p.allocPages(8)
      p.setSlot(1, pg)
    })
    p.begin()
    p.willWrite(p.slot(1) * PAGE_SIZE, 8 * PAGE_SIZE)
    p.allocPages(2)
    const snap = join(dir, 'pending.persist')
    copyFileSync(src, snap)
    p.abort()
    p.close()
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'fuzz.mjs'), snap, '300'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let o = ''
      let e = ''
      c.stdout.on('data', (d) => (o += d))
      c.stderr.on('data', (d) => (e += d))
      c.on('exit', (code, sig) =>
        code === 0 ? resolve(o) : reject(new Error(`fuzz died (${code ?? sig}): ${e}`)),
      )
    })
    const r = JSON.parse(out)
    expect(r.trials).toBe(300)
    expect(r.other).toEqual([])
    expect(r.opened + r.refused).toBe(300)
  })
})

describe('6. permissions and read-only', () => {
  it('6.1 readonly: reads work, every change is READONLY', () => {
    const f = validStore()
    const p = openPager(f, { readonly: true })
    p.begin()
    expect(p.slot(1)).toBeGreaterThan(0)
    expect(code(() => p.willWrite(p.slot(1) * PAGE_SIZE, 8))).toBe('PERSIST_READONLY')
    expect(code(() => p.allocPages(1))).toBe('PERSIST_READONLY')
    expect(code(() => p.setSlot(2, 1))).toBe('PERSIST_READONLY')
    expect(code(() => p.freePages(p.slot(1)))).toBe('PERSIST_READONLY')
    p.commit()
    expect(p.readonly).toBe(true)
    p.close()
  })
  it('6.2 a file without write permission: PERM for writing, readable with readonly', async () => {
    const d = join(dir, 'perm')
    mkdirSync(d, { mode: 0o755 })
    chmodSync(d, 0o755)
    chmodSync(dir, 0o755)
    const f = join(d, 'ro.persist')
    copyFileSync(validStore(), f)
    chmodSync(f, 0o444)
    // As root permissions are not enforced: run the probe as an unprivileged user.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'perm.mjs'), f], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...asUser,
      })
      let o = ''
      let e = ''
      c.stdout.on('data', (x) => (o += x))
      c.stderr.on('data', (x) => (e += x))
      c.on('exit', (code) => (code === 0 ? resolve(o) : reject(new Error(`perm probe failed: ${e}`))))
    })
    const r = JSON.parse(out)
    expect(r.writable).toBe('PERSIST_PERM')
    expect(r.writableMessage).toMatch(/readonly: true/)
    expect(r.readonlySlot).toBeGreaterThan(0)
    expect(r.readonlyWrite).toBe('PERSIST_READONLY')
  })
})

describe('7. misuse', () => {
  it('7.1 options are validated before native code (TypeError / RangeError)', () => {
    const f = fresh()
    expect(() => openPager(42 as unknown as string)).toThrow(TypeError)
    expect(() => openPager('')).toThrow(TypeError)
    expect(() => openPager(f, 'x' as never)).toThrow(TypeError)
    expect(() => openPager(f, { create: 1 } as never)).toThrow(TypeError)
    expect(() => openPager(f, { bogus: true } as never)).toThrow(/unknown option 'bogus'/)
    expect(() => openPager(f, { durability: 'disk' } as never)).toThrow(TypeError)
    expect(() => openPager(f, { maxSize: -1 })).toThrow(RangeError)
    expect(() => openPager(f, { maxSize: 1.5 })).toThrow(RangeError)
    expect(() => openPager(f, { lockTimeoutMs: '5' } as never)).toThrow(TypeError)
    expect(() => openPager(f, { mode: 0o10000 })).toThrow(RangeError)
  })
  it("7.2 durability 'full' opens; an opener asking for the other mode is INVALID", () => {
    const f = fresh()
    const p = openPager(f, { durability: 'full' })
    const e = errorOf(() => openPager(f))
    expect(e.code).toBe('PERSIST_INVALID')
    expect(e.message).toMatch(/same durability/)
    p.close()
  })
  it('7.3 method arguments are checked; pager pages are refused', () => {
    const p = openPager(fresh())
    expect(code(() => p.willWrite(0, 8))).toBe('PERSIST_TXN')
    p.begin()
    expect(() => p.willWrite('1' as never, 8)).toThrow(TypeError)
    expect(() => p.willWrite(-1, 8)).toThrow(RangeError)
    expect(() => p.allocPages(0)).toThrow(RangeError)
    expect(() => p.allocPages(1.5)).toThrow(RangeError)
    expect(() => p.slot(8)).toThrow(RangeError)
    expect(code(() => p.willWrite(0, 8))).toBe('PERSIST_INVALID') // header
    expect(code(() => p.willWrite(2 * PAGE_SIZE, 8))).toBe('PERSIST_INVALID') // map chunk
    expect(code(() => p.willWrite(20 * PAGE_SIZE, 8))).toBe('PERSIST_INVALID') // journal chunk
    expect(code(() => p.willWrite(p.stats().pageCount * PAGE_SIZE, 8))).toBe('PERSIST_INVALID') // past the end
    expect(code(() => p.freePages(0))).toBe('PERSIST_INVALID')
    expect(code(() => p.freePages(1))).toBe('PERSIST_INVALID')
    expect(code(() => p.freePages(17))).toBe('PERSIST_INVALID')
    const pg = p.allocPages(3)
    expect(code(() => p.freePages(pg + 1))).toBe('PERSIST_INVALID') // not a run start
    p.freePages(pg)
    expect(code(() => p.freePages(pg))).toBe('PERSIST_INVALID') // double free
    expect(code(() => p.begin())).toBe('PERSIST_TXN')
    p.commit()
    expect(code(() => p.commit())).toBe('PERSIST_TXN')
    expect(code(() => p.abort())).toBe('PERSIST_TXN')
    p.close()
    expect(code(() => p.begin())).toBe('PERSIST_CLOSED')
    expect(code(() => p.mem.u8(0))).toBe('PERSIST_CLOSED')
    p.close() // idempotent
  })
  it('7.4 growth beyond maxSize is TOO_BIG and the transaction stays usable', () => {
    const p = openPager(fresh(), { maxSize: 1 << 20 })
    p.begin()
    const a = p.allocPages(10)
    const e = errorOf(() => p.allocPages(300))
    expect(e.code).toBe('PERSIST_TOO_BIG')
    expect(e.message).toMatch(/maxSize/)
    p.commit()
    expect(p.runLength(a)).toBe(10)
    expect(p.check()).toEqual([])
    p.close()
  })
  it('7.4b a full disk (file size limit) is NOSPC; the transaction aborts cleanly', async () => {
    const f = fresh()
    const out = await new Promise<string>((resolve, reject) => {
      const fixture = join(import.meta.dirname, 'fixtures', 'nospc.mjs')
      // bash's ulimit -f counts 1024-byte blocks: 4 MiB.
      const c = spawn('bash', ['-c', 'ulimit -f 4096 && exec "$0" "$1" "$2"', process.execPath, fixture, f], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let o = ''
      let e = ''
      c.stdout.on('data', (x) => (o += x))
      c.stderr.on('data', (x) => (e += x))
      c.on('exit', (code) =>
        code === 0 ? resolve(o) : reject(new Error(`nospc probe failed (${code}): ${e}`)),
      )
    })
    const r = JSON.parse(out)
    expect(r.code).toBe('PERSIST_NOSPC')
    expect(r.message).toMatch(/grow/)
    expect(r.inTxn).toBe(true)
    expect(r.after).toBe(42)
    expect(r.check).toEqual([])
    const p = openPager(f)
    p.begin()
    expect(p.mem.u64(33 * PAGE_SIZE)).toBe(44) // the first page handed out is 33
    p.commit()
    p.close()
  })
  it('7.5 two handles of one file in one thread: LOCKED instead of a deadlock', () => {
    const f = fresh()
    const a = openPager(f)
    const b = openPager(f)
    a.begin()
    const e = errorOf(() => b.begin())
    expect(e.code).toBe('PERSIST_LOCKED')
    expect(e.message).toMatch(/already holds the lock/)
    a.commit()
    b.begin()
    b.commit()
    a.close()
    b.close()
  })
  it('7.6 lock wait times out with LOCKED naming the holder pid', async () => {
    const f = validStore()
    const c = await startHolder(f)
    const p = openPager(f, { lockTimeoutMs: 200 })
    const t0 = performance.now()
    const e = errorOf(() => p.begin())
    const dt = performance.now() - t0
    expect(e.code).toBe('PERSIST_LOCKED')
    expect(e.message).toMatch(new RegExp(`timed out after 200 ms .* held by pid ${c.pid}`))
    expect(dt).toBeGreaterThanOrEqual(190)
    const dead = new Promise((r) => c.on('exit', r))
    c.kill('SIGKILL')
    await dead
    expect(p.begin() & 4).toBe(4)
    p.commit()
    p.close()
  })
})
