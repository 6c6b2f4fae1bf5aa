#!/usr/bin/env node
// Kill -9 harness for @persist/pager.
//
//   node scripts/crash.mjs --trials N [--parallel P] [--max-ms M] [--seed S] [--dir D]
//
// A child process runs random transactions against a store; the parent kills it with
// SIGKILL at a random moment, reopens the store and verifies:
//   * every transaction the child reported as committed is present ("lost" otherwise),
//   * no partial transaction is visible and the structures are intact ("corrupt"
//     otherwise): the sum of all balances is constant (every transaction moves money
//     between records), every record's checksum holds, every record of the latest
//     transaction carries its number, every blob is uniformly filled with the byte of
//     the transaction that wrote it, no page leaked, and check() is clean.
// Prints "N trials, C corrupt, L lost" and exits 1 if C or L is not 0.
//
// A quarter of the trials skip the parent's check, so the next child recovers the
// store itself (and is sometimes killed while doing so).
// Transactions mix: 1-8 transfers (multi-range writes), blob allocation/free (page
// allocation, file growth, deferred frees), rewrites of whole blobs up to 300 pages
// (multi-chunk journal), nested transactions that throw (savepoints), and aborts.
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPager, PAGE_SIZE } from '@persist/pager'

const RECORDS = 128
const REC_STRIDE = 128 // bytes between records (records spread over 4 pages)
const TABLE_PAGES = (RECORDS * REC_STRIDE) / PAGE_SIZE
const TOTAL = RECORDS * 1_000_000
const BLOBS = 16
const SLOT_TABLE = 1
const SLOT_MANIFEST = 2
const SLOT_DIR = 3
const SLOT_LAST = 5

// ---- small deterministic PRNG (xorshift32) ----
function rng(seed) {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x % n
  }
}

function recCheck(balance, seq, idx) {
  // any mixing function of the three fields (exact in doubles: all < 2^32 * small)
  return ((balance * 31 + seq * 131 + idx * 7919 + 0x5bd1e995) % 4294967291) >>> 0
}

function setup(p) {
  p.transaction(() => {
    if (p.slot(SLOT_TABLE) !== 0) return
    const t = p.allocPages(TABLE_PAGES)
    const m = p.allocPages(1)
    const d = p.allocPages(1)
    const mem = p.mem
    for (let i = 0; i < RECORDS; i++) {
      const o = t * PAGE_SIZE + i * REC_STRIDE
      mem.setU64(o, TOTAL / RECORDS)
      mem.setU64(o + 8, 0)
      mem.setU32(o + 16, i)
      mem.setU32(o + 20, recCheck(TOTAL / RECORDS, 0, i))
    }
    mem.bytes(m * PAGE_SIZE, PAGE_SIZE).fill(0)
    mem.bytes(d * PAGE_SIZE, PAGE_SIZE).fill(0)
    p.setSlot(SLOT_TABLE, t)
    p.setSlot(SLOT_MANIFEST, m)
    p.setSlot(SLOT_DIR, d)
    p.setSlot(SLOT_LAST, 0)
  })
}

// ---- child: random transactions forever ----
function child(path, seed) {
  const r = rng(seed)
  const p = openPager(path)
  setup(p)
  writeSync(1, 'ready\n')
  const mem = p.mem
  for (;;) {
    const kind = r(100)
    p.begin()
    const n = p.slot(SLOT_LAST) + 1
    const t = p.slot(SLOT_TABLE) * PAGE_SIZE
    const m = p.slot(SLOT_MANIFEST) * PAGE_SIZE
    const d = p.slot(SLOT_DIR) * PAGE_SIZE
    const touched = new Set()
    const transfer = () => {
      const i = r(RECORDS)
      const j = r(RECORDS)
      const oi = t + i * REC_STRIDE
      const oj = t + j * REC_STRIDE
      const amount = r(Math.min(mem.u64(oi), 1000) + 1)
      p.willWrite(oi, 24)
      p.willWrite(oj, 24)
      const bi = mem.u64(oi) - amount
      mem.setU64(oi, bi)
      mem.setU64(oi + 8, n)
      mem.setU32(oi + 20, recCheck(bi, n, i))
      const bj = mem.u64(oj) + amount
      mem.setU64(oj, bj)
      mem.setU64(oj + 8, n)
      mem.setU32(oj + 20, recCheck(bj, n, j))
      touched.add(i)
      touched.add(j)
    }
    const k = 1 + r(8)
    for (let x = 0; x < k; x++) transfer()
    if (kind < 25) {
      // replace a blob: free the old run (deferred), allocate a new one, fill it
      const e = d + r(BLOBS) * 24
      p.willWrite(e, 24)
      const old = mem.u64(e)
      if (old !== 0) p.freePages(old)
      const pages = r(10) === 0 ? 100 + r(300) : 1 + r(40)
      const pg = p.allocPages(pages)
      mem.bytes(pg * PAGE_SIZE, pages * PAGE_SIZE).fill(n & 0xff)
      mem.setU64(pg * PAGE_SIZE, n)
      mem.setU64(e, pg)
      mem.setU64(e + 8, pages)
      mem.setU64(e + 16, n)
    } else if (kind < 35) {
      // rewrite a whole existing blob in place (big journal entries)
      const e = d + r(BLOBS) * 24
      const pg = mem.u64(e)
      if (pg !== 0) {
        const pages = mem.u64(e + 8)
        p.willWrite(pg * PAGE_SIZE, pages * PAGE_SIZE)
        mem.bytes(pg * PAGE_SIZE, pages * PAGE_SIZE).fill(n & 0xff)
        mem.setU64(pg * PAGE_SIZE, n)
        p.willWrite(e + 16, 8)
        mem.setU64(e + 16, n)
      }
    } else if (kind < 45) {
      // a nested transaction that throws: its writes must vanish
      try {
        p.transaction(() => {
          transferJunk(p, r, t)
          p.allocPages(1 + r(5))
          throw new Error('inner')
        })
      } catch {}
    }
    p.willWrite(m, 16 + 4 * touched.size)
    mem.setU64(m, n)
    mem.setU32(m + 8, touched.size)
    let x = 0
    for (const i of touched) mem.setU32(m + 16 + 4 * x++, i)
    p.setSlot(SLOT_LAST, n)
    if (kind >= 95) {
      p.abort()
      continue
    }
    p.commit()
    writeSync(1, `${n}\n`)
  }
}

function transferJunk(p, r, t) {
  const i = r(RECORDS)
  const o = t + i * REC_STRIDE
  p.willWrite(o, 24)
  p.mem.setU64(o, 0xdead)
}

// ---- verification ----
function journalEntriesOnDisk(path) {
  // hd_jr_entries (byte 64): non-zero means the kill hit a transaction in flight.
  try {
    const fd = openSync(path, 'r')
    const b = Buffer.alloc(8)
    readSync(fd, b, 0, 8, 64)
    closeSync(fd)
    return Number(b.readBigUInt64LE(0))
  } catch {
    return 0
  }
}

function verify(path) {
  const problems = []
  const p = openPager(path)
  try {
    p.begin()
    const mem = p.mem
    const last = p.slot(SLOT_LAST)
    const t = p.slot(SLOT_TABLE) * PAGE_SIZE
    const m = p.slot(SLOT_MANIFEST) * PAGE_SIZE
    const d = p.slot(SLOT_DIR) * PAGE_SIZE
    if (t === 0) {
      p.commit()
      return { last: 0, problems: p.check() }
    }
    let sum = 0
    for (let i = 0; i < RECORDS; i++) {
      const o = t + i * REC_STRIDE
      const b = mem.u64(o)
      const s = mem.u64(o + 8)
      sum += b
      if (mem.u32(o + 16) !== i || mem.u32(o + 20) !== recCheck(b, s, i)) problems.push(`record ${i} torn`)
      if (s > last) problems.push(`record ${i} has seq ${s} > last ${last}`)
    }
    if (sum !== TOTAL) problems.push(`balances sum to ${sum}, expected ${TOTAL} (partial transaction)`)
    if (last > 0) {
      if (mem.u64(m) !== last) problems.push(`manifest seq ${mem.u64(m)} != last ${last}`)
      const cnt = mem.u32(m + 8)
      for (let x = 0; x < cnt && x < 16; x++) {
        const i = mem.u32(m + 16 + 4 * x)
        if (mem.u64(t + i * REC_STRIDE + 8) !== last) problems.push(`record ${i} misses transaction ${last}`)
      }
    }
    let blobPages = 0
    for (let b = 0; b < BLOBS; b++) {
      const e = d + b * 24
      const pg = mem.u64(e)
      if (pg === 0) continue
      const pages = mem.u64(e + 8)
      const seq = mem.u64(e + 16)
      blobPages += pages
      if (p.runLength(pg) !== pages) problems.push(`blob ${b}: run length ${p.runLength(pg)} != ${pages}`)
      if (mem.u64(pg * PAGE_SIZE) !== seq)
        problems.push(`blob ${b}: header ${mem.u64(pg * PAGE_SIZE)} != ${seq}`)
      const bytes = mem.bytes(pg * PAGE_SIZE + 8, pages * PAGE_SIZE - 8)
      const want = seq & 0xff
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== want) {
          problems.push(`blob ${b}: byte ${i + 8} is ${bytes[i]}, expected ${want}`)
          break
        }
      }
    }
    const s = p.stats()
    const used = s.pageCount - s.freePages
    const expected = 1 + 16 + 16 * s.journalChunks + TABLE_PAGES + 2 + blobPages
    if (used !== expected) problems.push(`page accounting: ${used} pages in use, expected ${expected} (leak)`)
    problems.push(...p.check())
    p.commit()
    return { last, problems }
  } finally {
    p.close()
  }
}

// ---- parent ----
function args() {
  const a = { trials: 100, parallel: 2, maxMs: 200, seed: Date.now() % 1e9, dir: '' }
  const v = process.argv.slice(2)
  for (let i = 0; i < v.length; i++) {
    const k = v[i]
    const val = v[++i]
    if (k === '--trials') a.trials = Number(val)
    else if (k === '--parallel') a.parallel = Number(val)
    else if (k === '--max-ms') a.maxMs = Number(val)
    else if (k === '--seed') a.seed = Number(val)
    else if (k === '--dir') a.dir = val
    else throw new Error(`unknown argument ${k}`)
  }
  if (!(a.trials > 0 && a.parallel > 0)) throw new Error('--trials and --parallel must be positive')
  return a
}

async function trial(path, seed, r, maxMs) {
  const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', path, String(seed)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  c.stdout.on('data', (d) => (out += d))
  c.stderr.on('data', (d) => (err += d))
  const exited = new Promise((res) => c.on('exit', (code, sig) => res({ code, sig })))
  // Kill either during startup/recovery (sometimes) or after a random run time.
  const early = r(8) === 0
  if (!early) {
    await Promise.race([
      new Promise((res) => {
        const h = (d) => {
          if (!String(d).includes('ready')) return
          c.stdout.off('data', h)
          res()
        }
        c.stdout.on('data', h)
      }),
      exited,
    ])
  }
  await new Promise((res) => setTimeout(res, r(maxMs)))
  c.kill('SIGKILL')
  const { code, sig } = await exited
  if (sig !== 'SIGKILL') throw new Error(`child exited by itself (code ${code}): ${err}`)
  const lines = out.split('\n').filter((l) => /^\d+$/.test(l))
  const reported = lines.length ? Number(lines[lines.length - 1]) : 0
  return { reported, commits: lines.length }
}

async function main() {
  const a = args()
  const root = a.dir || mkdtempSync(join(tmpdir(), 'persist-crash-'))
  let corrupt = 0
  let lost = 0
  let commits = 0
  let done = 0
  let recovered = 0
  const r = rng(a.seed)
  const t0 = Date.now()
  async function lane(id) {
    const path = join(root, `crash-${id}.persist`)
    let maxReported = 0
    let pending = false // a trial whose store was not verified yet
    const check = () => {
      pending = false
      const v = verify(path)
      if (v.last < maxReported) {
        lost++
        console.error(`lane ${id}: lost: store has transaction ${v.last}, child reported ${maxReported}`)
      } else if (v.last > maxReported + 1) {
        corrupt++
        console.error(`lane ${id}: store has transaction ${v.last}, child reported only ${maxReported}`)
      }
      maxReported = v.last
      if (v.problems.length) {
        corrupt++
        console.error(`lane ${id}: corrupt after trial ${done}: ${v.problems.slice(0, 5).join('; ')}`)
      }
    }
    while (done < a.trials) {
      done++
      pending = true
      const res = await trial(path, r(1e9) + 1, r, a.maxMs)
      commits += res.commits
      maxReported = Math.max(maxReported, res.reported)
      if (journalEntriesOnDisk(path) > 0) recovered++
      // Now and then leave the recovery to the next child (which may itself be
      // killed while recovering: recovery must be idempotent).
      if (done < a.trials && r(4) === 0) continue
      check()
    }
    if (pending) check()
  }
  try {
    await Promise.all(Array.from({ length: a.parallel }, (_, i) => lane(i)))
  } finally {
    if (!a.dir) rmSync(root, { recursive: true, force: true })
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1)
  console.log(
    `${a.trials} trials, ${corrupt} corrupt, ${lost} lost (${commits} commits reported, ${recovered} kills inside a transaction rolled back, seed ${a.seed}, ${secs} s)`,
  )
  process.exitCode = corrupt || lost ? 1 : 0
}

if (process.argv[2] === '--child') child(process.argv[3], Number(process.argv[4]))
else await main()
