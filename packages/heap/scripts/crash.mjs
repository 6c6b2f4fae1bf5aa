#!/usr/bin/env node
// Kill -9 harness for @persist/heap.
//
//   node scripts/crash.mjs --trials N [--seed S] [--jobs J] [--json]
//
// Each trial starts a child process that opens a heap store and runs transactions of
// random alloc/free/realloc as fast as it can (half the large allocations come right
// after a scratch block of the same size was allocated and freed, so its run is
// reused inside the transaction), writing a fill byte into every block
// and keeping a table of its live blocks in the store itself (root slot 1). After
// every commit it prints "c <seq>". The parent kills it with SIGKILL at a random
// moment, reopens the store (the pager rolls back the interrupted transaction) and
// verifies:
//   - pager check() and heap check() report nothing (lists, bitmaps, counters, and
//     every page of the file is pager-owned, heap or free);
//   - the table's commit counter is the last one the child reported, or one more (a
//     commit that landed just before the kill, not yet printed);
//   - the set of live blocks is exactly the table's blocks plus the table itself
//     (no leak, nothing missing), no two overlap, each still holds its fill byte;
//   - bytes accounting: stats().bytesLive = sum of their usable sizes.
// Stores are reused for several trials in a row (recovery after recovery), then
// replaced. Exit code 0 when every trial passed; a summary line (or JSON) at the end.
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openHeap } from '@persist/heap'

const SELF = fileURLToPath(import.meta.url)
const HDR = 16 // table header: u32 count, u32 capacity, f64 commit seq
const ENT = 24 // table entry: f64 offset, f64 size, u32 fill byte, u32 pad

// Small deterministic PRNG (mulberry32).
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomSize(r) {
  const x = r()
  if (x < 0.5) return 1 + Math.floor(r() * 256)
  if (x < 0.8) return 1 + Math.floor(r() * 4096)
  if (x < 0.95) return 1 + Math.floor(r() * 32768)
  return 32769 + Math.floor(r() * 100_000)
}

// ---- child ------------------------------------------------------------------

function child(file, seed) {
  const r = rng(seed)
  const h = openHeap(file)
  const m = h.mem
  let t = h.root(1)
  if (t === 0) {
    h.transaction(() => {
      t = h.alloc(HDR + ENT * 64, { zero: true })
      h.pager.willWrite(t, HDR)
      m.setU32(t + 4, 64)
      h.setRoot(1, t)
    })
  }
  writeSync(1, 'ready\n')
  for (;;) {
    const seq = h.transaction(() => {
      const ops = 1 + Math.floor(r() * 24)
      for (let i = 0; i < ops; i++) {
        let count = m.u32(t)
        const x = r()
        if (count === 0 || (x < 0.45 && count < 1000)) {
          const size = randomSize(r)
          if (size > 32768 && r() < 0.5) {
            // A large block freed in the transaction that allocated it: the alloc below
            // takes its run back before commit (heap I10). A kill anywhere in here must
            // leave neither a leak nor a double allocation.
            const scratch = h.alloc(size)
            h.pager.willWrite(scratch, 64)
            m.bytes(scratch, 64).fill(0xee)
            h.free(scratch)
          }
          const off = h.alloc(size)
          const fill = 1 + Math.floor(r() * 255)
          h.pager.willWrite(off, size)
          m.bytes(off, size).fill(fill)
          if (count === m.u32(t + 4)) {
            const cap = count * 2
            const nt = h.realloc(t, HDR + ENT * cap)
            t = nt
            h.pager.willWrite(t, HDR)
            m.setU32(t + 4, cap)
            h.setRoot(1, t)
          }
          const e = t + HDR + ENT * count
          h.pager.willWrite(e, ENT)
          m.setF64(e, off)
          m.setF64(e + 8, size)
          m.setU32(e + 16, fill)
          h.pager.willWrite(t, 4)
          m.setU32(t, ++count)
        } else {
          const k = Math.floor(r() * count)
          const e = t + HDR + ENT * k
          const off = m.f64(e)
          if (x < 0.8) {
            h.free(off)
            const last = t + HDR + ENT * (count - 1)
            h.pager.willWrite(e, ENT)
            m.bytes(e, ENT).set(m.bytes(last, ENT))
            h.pager.willWrite(t, 4)
            m.setU32(t, count - 1)
          } else {
            const size = randomSize(r)
            const noff = h.realloc(off, size)
            const fill = 1 + Math.floor(r() * 255)
            h.pager.willWrite(noff, size)
            m.bytes(noff, size).fill(fill)
            h.pager.willWrite(e, ENT)
            m.setF64(e, noff)
            m.setF64(e + 8, size)
            m.setU32(e + 16, fill)
          }
        }
      }
      h.pager.willWrite(t + 8, 8)
      const s = m.f64(t + 8) + 1
      m.setF64(t + 8, s)
      return s
    })
    writeSync(1, `c ${seq}\n`) // synchronous: once it returns, the parent can read it even after a kill
  }
}

// ---- parent -----------------------------------------------------------------

const fills = new Map()
/** True when every byte of b is `fill` (a memcmp against a filled buffer). */
function sameFill(b, fill) {
  let ref = fills.get(fill)
  if (!ref || ref.length < b.length) {
    ref = Buffer.alloc(Math.max(b.length, 1 << 16), fill)
    fills.set(fill, ref)
  }
  return Buffer.from(b.buffer, b.byteOffset, b.length).equals(ref.subarray(0, b.length))
}

/** Verifies the store after a kill; returns a list of problems (empty = good). */
export function verify(file, lastReported) {
  const problems = []
  // hd_jr_entries (header offset 64) != 0: the child died inside a transaction.
  const fd = openSync(file, 'r')
  const hdr = Buffer.alloc(8)
  readSync(fd, hdr, 0, 8, 64)
  closeSync(fd)
  const interrupted = hdr.readBigUInt64LE(0) !== 0n
  const h = openHeap(file)
  try {
    problems.push(...h.check())
    const t = h.root(1)
    if (t === 0) {
      problems.push('root 1 (the table) is 0')
      return { problems, recovered: interrupted, blocks: 0 }
    }
    h.transaction(() => {
      const m = h.mem
      const count = m.u32(t)
      const seq = m.f64(t + 8)
      if (lastReported !== undefined && seq !== lastReported && seq !== lastReported + 1)
        problems.push(`table commit counter ${seq}, child reported ${lastReported}`)
      const expected = new Map([[t, h.usableSize(t)]])
      let bytes = h.usableSize(t)
      for (let i = 0; i < count; i++) {
        const e = t + HDR + ENT * i
        const off = m.f64(e)
        const size = m.f64(e + 8)
        const fill = m.u32(e + 16)
        if (expected.has(off)) {
          problems.push(`block ${off} is listed twice`)
          continue
        }
        let usable
        try {
          usable = h.usableSize(off)
        } catch (err) {
          problems.push(`table block ${off}: ${err.message}`)
          continue
        }
        if (usable < size) problems.push(`block ${off}: usable ${usable} < size ${size}`)
        expected.set(off, usable)
        bytes += usable
        const b = m.bytes(off, size)
        if (!sameFill(b, fill)) problems.push(`block ${off} (${size} bytes) lost its fill byte ${fill}`)
      }
      const live = [...h.blocks()]
      if (live.length !== expected.size)
        problems.push(`heap has ${live.length} live blocks, table accounts for ${expected.size}`)
      for (const off of live) if (!expected.has(off)) problems.push(`leaked block ${off}`)
      const sorted = [...expected.entries()].sort((a, b) => a[0] - b[0])
      for (let i = 1; i < sorted.length; i++)
        if (sorted[i - 1][0] + sorted[i - 1][1] > sorted[i][0])
          problems.push(`blocks ${sorted[i - 1][0]} and ${sorted[i][0]} overlap`)
      const st = h.stats()
      if (st.bytesLive !== bytes)
        problems.push(`stats.bytesLive ${st.bytesLive} != sum of usable sizes ${bytes}`)
      if (st.blocksLive !== expected.size)
        problems.push(`stats.blocksLive ${st.blocksLive} != ${expected.size}`)
      // every page: pager-owned (header, map chunks, journal chunks) + heap + free
      const ps = h.pager.stats()
      const mapChunks = Math.ceil(ps.pageCount / 262144)
      const pagerPages = 1 + 16 * mapChunks + 16 * ps.journalChunks
      if (st.heapPages + st.freePages + pagerPages !== ps.pageCount)
        problems.push(
          `pages: heap ${st.heapPages} + free ${st.freePages} + pager ${pagerPages} != ${ps.pageCount}`,
        )
    })
    return { problems, recovered: interrupted, blocks: h.stats().blocksLive }
  } finally {
    h.close()
  }
}

function runTrial(file, seed, killAfterMs) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [SELF, '--child', file, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let buf = ''
    let last
    let stderr = ''
    let timer
    c.stdout.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line === 'ready' && !timer) timer = setTimeout(() => c.kill('SIGKILL'), killAfterMs)
        else if (line.startsWith('c ')) last = Number(line.slice(2))
      }
    })
    c.stderr.on('data', (d) => {
      stderr += d
    })
    c.on('error', reject)
    // 'close', not 'exit': it comes after every byte the child wrote has been read
    c.on('close', (code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL')
        resolve({ last, error: `child exited by itself (code ${code}): ${stderr.slice(0, 2000)}` })
      else resolve({ last })
    })
  })
}

async function main(argv) {
  const arg = (name, dflt) => {
    const i = argv.indexOf(name)
    return i >= 0 ? argv[i + 1] : dflt
  }
  const trials = Number(arg('--trials', '20'))
  const seed0 = Number(arg('--seed', String(Date.now() % 1e9)))
  const jobs = Number(arg('--jobs', '2'))
  const perStore = 10
  const json = argv.includes('--json')
  const dir = mkdtempSync(join(tmpdir(), 'persist-heap-crash-'))
  const r = rng(seed0)
  let done = 0
  let recovered = 0
  let commits = 0
  let maxBlocks = 0
  const failures = []
  const started = Date.now()
  let next = 0
  let tRun = 0
  let tVerify = 0
  async function worker(w) {
    while (next < trials) {
      const chainStart = next
      next = Math.min(trials, next + perStore)
      const file = join(dir, `w${w}-t${chainStart}.persist`)
      for (let k = chainStart; k < Math.min(trials, chainStart + perStore); k++) {
        const seed = Math.floor(r() * 2 ** 31)
        const killAfter = Math.floor(r() * 60)
        let t0 = performance.now()
        const { last, error } = await runTrial(file, seed, killAfter)
        tRun += performance.now() - t0
        t0 = performance.now()
        const res = verify(file, last)
        tVerify += performance.now() - t0
        done++
        if (res.recovered) recovered++
        if (last) commits += 1
        maxBlocks = Math.max(maxBlocks, res.blocks)
        if (error) res.problems.unshift(error)
        if (res.problems.length)
          failures.push({ trial: k, seed, killAfter, file, problems: res.problems.slice(0, 10) })
        if (!json && done % 25 === 0) process.stdout.write(`  ${done}/${trials} trials\n`)
      }
      if (!failures.some((f) => f.file === file)) rmSync(file, { force: true })
    }
  }
  await Promise.all(Array.from({ length: jobs }, (_, w) => worker(w)))
  const summary = {
    trials: done,
    failed: failures.length,
    recovered,
    trialsWithCommits: commits,
    maxLiveBlocks: maxBlocks,
    seconds: (Date.now() - started) / 1000,
    childSeconds: Math.round(tRun) / 1000,
    verifySeconds: Math.round(tVerify) / 1000,
    seed: seed0,
    failures,
  }
  if (failures.length === 0) rmSync(dir, { recursive: true, force: true })
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`)
  else {
    for (const f of failures)
      process.stdout.write(
        `FAIL trial ${f.trial} (seed ${f.seed}, ${f.file}):\n  ${f.problems.join('\n  ')}\n`,
      )
    process.stdout.write(
      `${done} trials, ${failures.length} failed, ${recovered} rolled back an interrupted transaction, ` +
        `up to ${maxBlocks} live blocks, ${summary.seconds.toFixed(1)} s ` +
        `(children ${summary.childSeconds} s, verification ${summary.verifySeconds} s summed over jobs; seed ${seed0})\n`,
    )
  }
  process.exitCode = failures.length ? 1 : 0
}

if (process.argv[2] === '--child') child(process.argv[3], Number(process.argv[4]))
else if (process.argv[1] === SELF) await main(process.argv.slice(2))
