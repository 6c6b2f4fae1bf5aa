#!/usr/bin/env node
// Power-cut harness for durability 'full' of @persist/pager.
//
//   node scripts/crash-power.mjs --trials N [--seed S] [--txns T] [--recovery-cuts F] [--procs P]
//
// With --procs P > 1 the workload is P processes committing at once (group commit),
// all tracing into one file; see "concurrent committers" below for what is verified.
//
// 1. A child runs a deterministic random workload on a 'full' store with
//    PERSIST_IO_TRACE set: the pager appends every write, sync and allocation of the
//    store and its log to a trace, plus a marker when a commit returns (its txid).
//    Transactions: multi-range record updates (spread over 5 pages), blob allocation
//    (1-40 pages, file growth) + free of the previous blob, savepoints rolled back,
//    aborted transactions, enough log volume to pass checkpoints.
// 2. For each of N cut points (an event index in the trace) a disk image is built:
//    every file's content at its last completed sync before the cut + a random subset
//    of the later writes, applied per 512-byte sector (so a 4 KiB page can be torn),
//    and size extensions dropped or kept at random.
// 3. The image is opened in 'full' mode (recovery) and verified: check() clean; the
//    store holds exactly the state after some transaction T (every record, directory
//    entry and blob byte as the workload wrote them up to T; nothing of T+1 or of any
//    aborted/rolled-back write); T >= every transaction whose commit returned before
//    the cut ("lost" otherwise). A fraction F (default 0.25) of the cuts also cut the
//    recovery itself: a traced child recovers the image, the trace is cut again and
//    the second image is verified the same way.
// Prints "N cuts, C corrupt, L lost" and exits 1 if C or L is not 0.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPager, PAGE_SIZE } from '@persist/pager'

const RECORDS = 96
const REC_STRIDE = 168 // records spread over 4 pages
const DIRS = 8
const TABLE_PAGES = 5 // 4 pages of records + 1 directory page
const SLOT_TABLE = 1
const SLOT_T = 5

function mulberry(seed) {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0
  }
}
const h32 = (a, b, c) => {
  let x =
    (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul(b >>> 0, 0x85ebca77) ^ Math.imul(c >>> 0, 0xc2b2ae3d)) >>> 0
  x ^= x >>> 15
  return Math.imul(x, 0x2c1b3c6d) >>> 0
}
const recValue = (t, r) => h32(t, r, 7)
const fillByte = (t) => (t % 251) + 1

/** The operations of workload transaction t (1-based), a pure function of (seed, t). */
function genTxn(seed, t) {
  const rnd = mulberry(h32(seed, t, 0x5eed))
  const k = 1 + rnd(6)
  const recs = new Set()
  while (recs.size < k) recs.add(rnd(RECORDS))
  const blob = rnd(100) < 35 ? { d: rnd(DIRS), n: 1 + rnd(40) } : null
  const sp = rnd(100) < 20
  const abortFirst = rnd(100) < 10
  return { recs: [...recs], blob, sp, abortFirst, junk: rnd(RECORDS) }
}

const recOff = (table, r) => table * PAGE_SIZE + r * REC_STRIDE
const dirOff = (table, d) => (table + 4) * PAGE_SIZE + d * 64

function writeRec(p, table, r, tag, value) {
  const o = recOff(table, r)
  p.willWrite(o, 32)
  p.mem.setU64(o, tag)
  p.mem.setU64(o + 8, value)
  p.mem.setU64(o + 16, h32(tag, value, r))
}

// ---------------------------------------------------------------- child: workload
function childWorkload(path, seed, txns) {
  const p = openPager(path, { durability: 'full' })
  p.begin()
  const table = p.slot(SLOT_TABLE)
  let t = p.slot(SLOT_T)
  p.commit()
  for (; t < txns; ) {
    const tx = genTxn(seed, t + 1)
    if (tx.abortFirst) {
      p.begin()
      writeRec(p, table, tx.junk, 0xbad, 0xbad)
      const g = p.allocPages(3)
      p.mem.bytes(g * PAGE_SIZE, 3 * PAGE_SIZE).fill(0xee)
      p.abort()
    }
    t += 1
    p.begin()
    for (const r of tx.recs) writeRec(p, table, r, t, recValue(t, r))
    if (tx.blob) {
      const { d, n } = tx.blob
      const page = p.allocPages(n)
      const v = fillByte(t)
      p.mem.bytes(page * PAGE_SIZE, n * PAGE_SIZE).fill(v)
      for (let i = 0; i < n; i++) p.mem.setU64((page + i) * PAGE_SIZE, t)
      const o = dirOff(table, d)
      const old = p.mem.u64(o)
      if (old !== 0) p.freePages(old)
      p.willWrite(o, 32)
      p.mem.setU64(o, page)
      p.mem.setU64(o + 8, n)
      p.mem.setU64(o + 16, t)
      p.mem.setU64(o + 24, h32(page, n, t))
    }
    if (tx.sp) {
      const s = p.savepoint()
      writeRec(p, table, tx.junk, 0xdead, 0xdead)
      const g = p.allocPages(2)
      p.mem.bytes(g * PAGE_SIZE, 2 * PAGE_SIZE).fill(0xdd)
      p.rollbackTo(s)
    }
    p.setSlot(SLOT_T, t)
    p.commit()
  }
  p.close()
}

function childRecover(path) {
  const p = openPager(path, { durability: 'full' })
  p.close()
}

// ---------------------------------------------------------------- trace + images
function parseTrace(buf) {
  const ev = []
  let q = 0
  while (q + 16 <= buf.length) {
    const type = String.fromCharCode(buf[q])
    const file = buf[q + 1]
    const len = buf.readUInt32LE(q + 4)
    const off = Number(buf.readBigUInt64LE(q + 8))
    if (q + 16 + len > buf.length) break
    ev.push({ type, file, off, tok: buf.readBigUInt64LE(q + 8), data: buf.subarray(q + 16, q + 16 + len) })
    q += 16 + len
  }
  return ev
}

class FileImage {
  constructor(base) {
    this.buf = Buffer.alloc(Math.max(base.length, 1 << 16))
    base.copy(this.buf)
    this.size = base.length
  }
  ensure(n) {
    if (n <= this.buf.length) return
    const b = Buffer.alloc(Math.max(n, this.buf.length * 2))
    this.buf.copy(b, 0, 0, this.size)
    this.buf = b
  }
  write(off, data) {
    this.ensure(off + data.length)
    data.copy(this.buf, off)
    this.size = Math.max(this.size, off + data.length)
  }
  extend(n) {
    this.ensure(n)
    this.size = Math.max(this.size, n)
  }
  bytes() {
    return this.buf.subarray(0, this.size)
  }
}

/** Disk content after a cut before event k: synced state + a random sector subset. */
function buildImage(bases, ev, k, rnd) {
  const files = bases.map((b) => new FileImage(b))
  // A completed sync ('S') makes durable the writes traced before its 'B' (same token):
  // with several processes tracing, writes traced while it ran may or may not be in.
  const lastSync = bases.map(() => -1)
  const begun = new Map()
  for (let i = 0; i < k; i++) {
    if (ev[i].type === 'B') begun.set(ev[i].tok, i)
    else if (ev[i].type === 'S')
      lastSync[ev[i].file] = Math.max(lastSync[ev[i].file], begun.get(ev[i].tok) ?? i)
  }
  // keep probability (percent) for this cut: none, all, half, or random
  const mode = rnd(4)
  const pct = mode === 0 ? 0 : mode === 1 ? 100 : mode === 2 ? 50 : rnd(101)
  for (let i = 0; i < k; i++) {
    const e = ev[i]
    if (e.type !== 'W' && e.type !== 'A') continue
    const img = files[e.file]
    const durable = i < lastSync[e.file]
    if (e.type === 'A') {
      if (durable || rnd(100) < pct) img.extend(e.off)
      continue
    }
    if (durable) {
      img.write(e.off, e.data)
      continue
    }
    for (let s = e.off; s < e.off + e.data.length; ) {
      const next = Math.min(e.off + e.data.length, (Math.floor(s / 512) + 1) * 512)
      if (rnd(100) < pct) img.write(s, e.data.subarray(s - e.off, next - e.off))
      s = next
    }
  }
  return files.map((f) => f.bytes())
}

// ---------------------------------------------------------------- verification
function expectedState(seed, T) {
  const recs = new Map()
  const dirs = new Map()
  for (let t = 1; t <= T; t++) {
    const tx = genTxn(seed, t)
    for (const r of tx.recs) recs.set(r, t)
    if (tx.blob) dirs.set(tx.blob.d, { t, n: tx.blob.n })
  }
  return { recs, dirs }
}

/**
 * Opens a cut image in 'full' mode (recovery runs), checks it and runs `verify(p)`
 * inside a transaction; returns verify's { problem, T } (problem null when the image
 * is a consistent state) or the open/check/throw problem.
 */
function verifyRecovered(path, verify) {
  let p
  try {
    p = openPager(path, { durability: 'full' })
  } catch (e) {
    return { problem: `open failed: ${e.code} ${e.message}`, T: -1 }
  }
  try {
    p.begin()
    const problems = p.check()
    if (problems.length) return { problem: `check: ${problems.join('; ')}`, T: -1 }
    const r = verify(p)
    if (r.problem) return r
    p.commit()
    return r
  } catch (e) {
    return { problem: `verify threw: ${e.code ?? ''} ${e.message}`, T: -1 }
  } finally {
    try {
      p.close()
    } catch {}
  }
}

/** The single-process workload's image: records, blob directories and blobs at T. */
function verifyImage(path, seed, baseTxid) {
  return verifyRecovered(path, (p) => {
    const table = p.slot(SLOT_TABLE)
    const T = p.slot(SLOT_T)
    if (p.txid - baseTxid !== T) return { problem: `txid ${p.txid} vs workload T ${T}`, T }
    const { recs, dirs } = expectedState(seed, T)
    const m = p.mem
    for (let r = 0; r < RECORDS; r++) {
      const o = recOff(table, r)
      const t = recs.get(r) ?? 0
      const want = t ? [t, recValue(t, r), h32(t, recValue(t, r), r)] : [0, 0, 0]
      const got = [m.u64(o), m.u64(o + 8), m.u64(o + 16)]
      if (got.join() !== want.join()) return { problem: `record ${r}: ${got} want ${want} (T=${T})`, T }
    }
    for (let d = 0; d < DIRS; d++) {
      const o = dirOff(table, d)
      const want = dirs.get(d)
      const page = m.u64(o)
      if (!want) {
        if (page !== 0 || m.u64(o + 16) !== 0) return { problem: `dir ${d} should be empty (T=${T})`, T }
        continue
      }
      const n = m.u64(o + 8)
      if (m.u64(o + 16) !== want.t || n !== want.n || m.u64(o + 24) !== h32(page, n, want.t))
        return { problem: `dir ${d}: tag ${m.u64(o + 16)} n ${n} want ${want.t}/${want.n} (T=${T})`, T }
      if (p.runLength(page) !== n) return { problem: `dir ${d}: run at ${page} is not ${n} pages`, T }
      const v = fillByte(want.t)
      for (let i = 0; i < n; i++) {
        const b = m.bytes((page + i) * PAGE_SIZE, PAGE_SIZE)
        if (m.u64((page + i) * PAGE_SIZE) !== want.t) return { problem: `blob ${d} page ${i}: bad tag`, T }
        for (let j = 8; j < PAGE_SIZE; j++)
          if (b[j] !== v) return { problem: `blob ${d} page ${i} byte ${j}: ${b[j]} want ${v}`, T }
      }
    }
    return { problem: null, T }
  })
}

// ---------------------------------------------------------------- concurrent committers
// P processes (index i < 8) commit T transactions each, at once, tracing into one file
// (each trace record is one O_APPEND write; a sync makes durable the writes traced
// before its 'B' event, which is conservative for writes racing with it and exact for
// the records a group commit relies on: they are traced before they are published).
// Transaction k of process i, on one table page: shared counter += 1, own[i] = k,
// record k % 8 of i = [k, h], and every 4th transaction a blob of 1-20 pages (growth)
// replacing i's previous one (freed). Verified per image: check() clean; shared ==
// sum of own[i] == txid - base (no partial transaction, one txid each); i's records
// and blob exactly as its transaction own[i] left them; txid >= every txid whose
// commit had returned ('C' events carry the txid) — log order is txid order, so the
// state then holds that transaction and every earlier one.
const CP_REC = (table, i, r) => table * PAGE_SIZE + 512 + i * 256 + r * 16
const CP_DIR = (table, i) => table * PAGE_SIZE + 512 + i * 256 + 128
const cpBlobPages = (seed, i, k) => 1 + (h32(seed, i, k) % 20)

function childConcurrent(path, seed, i, txns) {
  const p = openPager(path, { durability: 'full' })
  p.begin()
  const table = p.slot(SLOT_TABLE)
  p.commit()
  const off = table * PAGE_SIZE
  for (let k = 1; k <= txns; k++) {
    p.begin()
    p.willWrite(off, 8)
    p.mem.setU64(off, p.mem.u64(off) + 1)
    p.willWrite(off + 8 * (1 + i), 8)
    p.mem.setU64(off + 8 * (1 + i), k)
    const ro = CP_REC(table, i, k % 8)
    p.willWrite(ro, 16)
    p.mem.setU64(ro, k)
    p.mem.setU64(ro + 8, h32(seed, i, k))
    if (k % 4 === 0) {
      const n = cpBlobPages(seed, i, k)
      const page = p.allocPages(n)
      p.mem.bytes(page * PAGE_SIZE, n * PAGE_SIZE).fill(fillByte(k))
      const d = CP_DIR(table, i)
      const old = p.mem.u64(d)
      if (old !== 0) p.freePages(old)
      p.willWrite(d, 24)
      p.mem.setU64(d, page)
      p.mem.setU64(d + 8, n)
      p.mem.setU64(d + 16, k)
    }
    p.commit()
  }
  p.close()
}

function verifyConcurrent(path, seed, baseTxid, procs) {
  return verifyRecovered(path, (p) => {
    const table = p.slot(SLOT_TABLE)
    const m = p.mem
    const off = table * PAGE_SIZE
    const T = p.txid - baseTxid
    const own = []
    for (let i = 0; i < procs; i++) own.push(m.u64(off + 8 * (1 + i)))
    const sum = own.reduce((a, b) => a + b, 0)
    if (m.u64(off) !== sum || sum !== T)
      return { problem: `shared ${m.u64(off)}, own ${own}, txid-base ${T}`, T }
    for (let i = 0; i < procs; i++) {
      const c = own[i]
      for (let r = 0; r < 8; r++) {
        let k = c - ((((c - r) % 8) + 8) % 8)
        if (k <= 0) k = 0
        const want = k ? [k, h32(seed, i, k)] : [0, 0]
        const ro = CP_REC(table, i, r)
        const got = [m.u64(ro), m.u64(ro + 8)]
        if (got.join() !== want.join())
          return { problem: `proc ${i} record ${r}: ${got} want ${want} (own ${c})`, T }
      }
      const kb = c - (c % 4)
      const d = CP_DIR(table, i)
      if (kb === 0) {
        if (m.u64(d) !== 0) return { problem: `proc ${i}: blob before its first blob transaction`, T }
        continue
      }
      const n = cpBlobPages(seed, i, kb)
      const page = m.u64(d)
      if (m.u64(d + 8) !== n || m.u64(d + 16) !== kb)
        return { problem: `proc ${i}: dir ${m.u64(d + 16)} want ${kb}`, T }
      if (p.runLength(page) !== n) return { problem: `proc ${i}: run at ${page} is not ${n} pages`, T }
      const b = m.bytes(page * PAGE_SIZE, n * PAGE_SIZE)
      const v = fillByte(kb)
      for (let j = 0; j < b.length; j++)
        if (b[j] !== v) return { problem: `proc ${i}: blob byte ${j} is ${b[j]}`, T }
    }
    return { problem: null, T: p.txid } // absolute: the caller compares with returned txids
  })
}

// ---------------------------------------------------------------- parent
function arg(name, def) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : def
}

const self = fileURLToPath(import.meta.url)

function writeImage(path, files) {
  writeFileSync(path, files[0])
  writeFileSync(`${path}-wal`, files[1])
}

export function runPowerCuts({ trials, seed, txns, recoveryCuts, dir, log = () => {}, procs = 1 }) {
  const store = join(dir, 'store.persist')
  // setup: table + directory (fresh pages, zeroed), not traced
  const p = openPager(store, { durability: 'full' })
  p.begin()
  const table = p.allocPages(TABLE_PAGES)
  p.mem.bytes(table * PAGE_SIZE, TABLE_PAGES * PAGE_SIZE).fill(0)
  p.setSlot(SLOT_TABLE, table)
  p.setSlot(SLOT_T, 0)
  p.commit()
  const baseTxid = p.txid
  p.close()
  const bases = [readFileSync(store), readFileSync(`${store}-wal`)]
  const trace = join(dir, 'trace')
  const workload =
    procs > 1
      ? ['--child-group', store, String(seed), String(procs), String(txns)]
      : ['--child-workload', store, String(seed), String(txns)]
  const r = spawnSync(process.execPath, [self, ...workload], {
    env: { ...process.env, PERSIST_IO_TRACE: trace },
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`workload child failed: ${r.stderr}`)
  const ev = parseTrace(readFileSync(trace))
  const commits = ev.filter((e) => e.type === 'C').length
  const syncs = ev.filter((e) => e.type === 'S').length
  log(`trace: ${ev.length} events, ${commits} commits, ${syncs} syncs`)
  const rnd = mulberry(h32(seed, 1, 2))
  let corrupt = 0
  let lost = 0
  let inRecovery = 0
  const img = join(dir, 'img.persist')
  for (let c = 0; c < trials; c++) {
    const k = rnd(ev.length + 1)
    let required = 0
    for (let i = 0; i < k; i++)
      if (ev[i].type === 'C') required = Math.max(required, procs > 1 ? ev[i].off : ev[i].off - baseTxid)
    let files = buildImage(bases, ev, k, rnd)
    rmSync(img, { force: true })
    rmSync(`${img}-wal`, { force: true })
    writeImage(img, files)
    if (rnd(1000) < recoveryCuts * 1000) {
      // cut the recovery itself: recover the image with tracing on, then cut inside
      // the recovery's own I/O (the trace is re-read by every open)
      const t2 = join(dir, 'trace2')
      rmSync(t2, { force: true })
      process.env.PERSIST_IO_TRACE = t2
      try {
        childRecover(img)
      } catch (e) {
        corrupt++
        log(`cut ${c} (event ${k}): recovery failed: ${e.code} ${e.message}`)
        continue
      } finally {
        delete process.env.PERSIST_IO_TRACE
      }
      const ev2 = existsSync(t2) ? parseTrace(readFileSync(t2)) : []
      const k2 = rnd(ev2.length + 1)
      files = buildImage(files, ev2, k2, rnd)
      writeImage(img, files)
      inRecovery++
    }
    const v = procs > 1 ? verifyConcurrent(img, seed, baseTxid, procs) : verifyImage(img, seed, baseTxid)
    if (v.problem) {
      corrupt++
      log(`cut ${c} (event ${k}/${ev.length}): CORRUPT ${v.problem}`)
    } else if (v.T < required) {
      lost++
      log(`cut ${c} (event ${k}): LOST state T=${v.T} but transaction ${required} had returned`)
    }
  }
  return { trials, corrupt, lost, inRecovery, commits }
}

const mode = process.argv[2]
if (mode === '--child-workload') {
  childWorkload(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))
} else if (mode === '--child-group') {
  // P concurrent committers; exits non-zero if any fails
  const [store, seed, procs, txns] = process.argv.slice(3)
  const { spawn } = await import('node:child_process')
  const codes = await Promise.all(
    Array.from(
      { length: Number(procs) },
      (_, i) =>
        new Promise((resolve) =>
          spawn(process.execPath, [self, '--child-concurrent', store, seed, String(i), txns], {
            stdio: 'inherit',
          }).on('exit', resolve),
        ),
    ),
  )
  process.exitCode = codes.every((c) => c === 0) ? 0 : 1
} else if (mode === '--child-concurrent') {
  childConcurrent(process.argv[3], Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]))
} else if (mode === '--child-recover') {
  childRecover(process.argv[3])
} else if (process.argv[1] === self) {
  const trials = Number(arg('--trials', '500'))
  const seed = Number(arg('--seed', String(Date.now() % 1e9)))
  const txns = Number(arg('--txns', '200'))
  const recoveryCuts = Number(arg('--recovery-cuts', '0.25'))
  const procs = Number(arg('--procs', '1'))
  // --dir D: where the workload runs (default /dev/shm); on a real disk fdatasync takes
  // time, so concurrent committers really share syncs (group commit)
  const base = arg('--dir', existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
  const dir = mkdtempSync(join(base, 'persist-power-'))
  try {
    const res = runPowerCuts({ trials, seed, txns, recoveryCuts, dir, procs, log: (s) => console.error(s) })
    console.log(
      `seed ${seed}${procs > 1 ? `, ${procs} concurrent committers` : ''}: ${res.commits} commits traced, ${res.inRecovery} cuts also inside recovery\n` +
        `${res.trials} cuts, ${res.corrupt} corrupt, ${res.lost} lost`,
    )
    process.exitCode = res.corrupt || res.lost ? 1 : 0
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
