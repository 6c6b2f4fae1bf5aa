#!/usr/bin/env node
// Soak: 8 processes × mixed operations on one store × M minutes, with random kill -9s
// and restarts.
//
//   node packages/persist/scripts/soak.mjs --minutes M | --seconds S [--procs 8]
//        [--kill-every-ms 1000] [--seed S]
//
// Worker w repeats random operations, each one transaction (a turn or an explicit
// transaction) that also does root.ops[w] += 1 and root.total += 1, and prints
// "ok <ops[w]>" after the commit (a blocking write). Operations: counter, transfers
// between 16 accounts (sum constant), a shared list with its length kept in root.llen,
// a dict with its size kept in root.dcount, big uniform strings (up to 1 MiB), nested
// transactions that throw (rolled back), gc(), and invariant checks inside a turn (a
// worker must never see a broken invariant: isolation). Every --kill-every-ms (random
// around it) the parent kills a random worker with SIGKILL and starts a new one in
// its slot. At the end all workers are killed and a fresh process verifies:
//   * check() == [] and every invariant holds;
//   * total == sum(ops), and for each slot ops[w] is the last printed count or one
//     more (a commit whose line the kill cut off) — exact totals.
// Exits 1 on any failure.
import { writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs, rmDir, rng, runChild, sleep, tempDir } from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)
const ACCTS = 16

function out(s) {
  const b = Buffer.from(`${s}\n`)
  for (let off = 0; off < b.length; ) {
    try {
      off += writeSync(1, b, off)
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e
    }
  }
}

function invariants(root, procs) {
  const errs = []
  if (root.total === undefined) return errs
  let sumOps = 0
  for (let w = 0; w < procs; w++) sumOps += root.ops[w]
  if (sumOps !== root.total) errs.push(`total ${root.total} != sum(ops) ${sumOps}`)
  let sum = 0
  for (let i = 0; i < ACCTS; i++) sum += root.acct[i]
  if (sum !== ACCTS * 1000) errs.push(`account sum ${sum} != ${ACCTS * 1000}`)
  if (root.list.length !== root.llen) errs.push(`list length ${root.list.length} != llen ${root.llen}`)
  const dk = Object.keys(root.d).length
  if (dk !== root.dcount) errs.push(`dict size ${dk} != dcount ${root.dcount}`)
  for (const k of Object.keys(root.big)) {
    const s = root.big[k]
    const c = s[0]
    if (s.length !== root.bigLen[k] || s[s.length - 1] !== c || s[s.length >> 1] !== c)
      errs.push(`big.${k} is not uniform (${s.length})`)
  }
  return errs
}

async function worker(file, w, procs, seed) {
  const { open } = await import('@persist/persist')
  const s = open(file, { lockTimeoutMs: 30_000 })
  s.transaction(() => {
    const root = s.root
    if (root.total !== undefined) return
    root.total = 0
    root.ops = Array.from({ length: procs }, () => 0)
    root.acct = Array.from({ length: ACCTS }, () => 1000)
    root.list = []
    root.llen = 0
    root.d = {}
    root.dcount = 0
    root.big = {}
    root.bigLen = {}
    root.gcs = 0
  })
  const r = rng(seed)
  const INNER = new Error('inner')
  const bump = (root) => {
    root.ops[w] += 1
    root.total += 1
    return root.ops[w]
  }
  for (;;) {
    const op = r.int(100)
    let n
    if (op < 30) {
      // a plain turn
      const root = s.root
      n = bump(root)
      await null
    } else if (op < 50) {
      n = s.transaction(() => {
        const root = s.root
        for (let t = 1 + r.int(5); t > 0; t--) {
          const a = r.int(ACCTS)
          const b = r.int(ACCTS)
          const x = r.int(100)
          root.acct[a] -= x
          root.acct[b] += x
        }
        return bump(root)
      })
    } else if (op < 65) {
      const root = s.root
      if (root.list.length > 200 || (root.list.length > 0 && r.bool(0.4))) {
        root.list.pop()
        root.llen -= 1
      } else {
        root.list.push({ by: w, at: root.total, tag: r.word(6) })
        root.llen += 1
      }
      n = bump(root)
      await null
    } else if (op < 80) {
      n = s.transaction(() => {
        const root = s.root
        const k = `k${r.int(200)}`
        if (k in root.d) {
          delete root.d[k]
          root.dcount -= 1
        } else {
          root.d[k] = r.bool() ? [w, r.word(20)] : { w, v: r.int(1e9) }
          root.dcount += 1
        }
        return bump(root)
      })
    } else if (op < 88) {
      n = s.transaction(() => {
        const root = s.root
        const k = `b${r.int(6)}`
        const len = 1000 + r.int(1 << 20)
        root.big[k] = String.fromCharCode(97 + r.int(26)).repeat(len)
        root.bigLen[k] = len
        return bump(root)
      })
    } else if (op < 95) {
      n = s.transaction(() => {
        const root = s.root
        try {
          s.transaction(() => {
            root.total += 1000
            root.list.push('never')
            root.acct[0] += 5
            throw INNER
          })
        } catch (e) {
          if (e !== INNER) throw e
        }
        return bump(root)
      })
    } else if (op < 96) {
      n = s.transaction(() => {
        s.gc()
        s.root.gcs += 1
        return bump(s.root)
      })
    } else {
      // isolation: invariants hold inside any turn
      const errs = invariants(s.root, procs)
      if (errs.length) out(`bad ${errs.join('; ')}`)
      n = bump(s.root)
      await null
    }
    out(`ok ${n}`)
  }
}

async function verify(file, procs) {
  const { open } = await import('@persist/persist')
  const s = open(file, { create: false, lockTimeoutMs: 30_000 })
  const problems = s.check()
  const errs = invariants(s.root, procs)
  const res = {
    problems,
    errs,
    ops: s.root.ops ? [...s.root.ops] : [],
    total: s.root.total,
    llen: s.root.llen,
    dcount: s.root.dcount,
    gcs: s.root.gcs,
  }
  s.close()
  process.stdout.write(`${JSON.stringify(res)}\n`)
}

async function parent(argv) {
  const o = parseArgs(argv, { minutes: 0, seconds: 0, procs: 8, 'kill-every-ms': 1000, seed: 0, keep: false })
  const ms = o.seconds ? o.seconds * 1000 : (o.minutes || 1) * 60_000
  const seed = o.seed || (Date.now() % 1e9) + 1
  const r = rng(seed)
  const dir = tempDir('persist-soak-')
  const file = `${dir}/soak.persist`
  const printed = Array(o.procs).fill(0)
  const slots = []
  const failures = []
  let kills = 0
  let starts = 0
  const start = (w) => {
    starts++
    const c = runChild(SELF, ['--worker', file, String(w), String(o.procs), String(r.next())], {
      onLine: (line) => {
        if (line.startsWith('ok ')) printed[w] = Number(line.slice(3))
        else if (line.startsWith('bad '))
          failures.push(`worker ${w} saw a broken invariant: ${line.slice(4)}`)
      },
    })
    c.done.then((res) => {
      if (!c.killedByUs)
        failures.push(
          `worker ${w} exited by itself (${res.signal ?? res.code}): ${res.stderr.slice(0, 1500)}`,
        )
    })
    slots[w] = c
  }
  const t0 = Date.now()
  for (let w = 0; w < o.procs; w++) start(w)
  while (Date.now() - t0 < ms && failures.length < 20) {
    await sleep(o['kill-every-ms'] / 2 + r.int(o['kill-every-ms']))
    const w = r.int(o.procs)
    const c = slots[w]
    c.killedByUs = true
    c.proc.kill('SIGKILL')
    kills++
    await c.done
    start(w)
  }
  for (const c of slots) {
    c.killedByUs = true
    c.proc.kill('SIGKILL')
  }
  await Promise.all(slots.map((c) => c.done))
  const v = await runChild(SELF, ['--verify', file, String(o.procs)], { timeoutMs: 120_000 }).done
  const got = v.lines.length ? JSON.parse(v.lines[0]) : undefined
  if (!got) failures.push(`verifier failed: ${v.signal ?? v.code}: ${v.stderr.slice(0, 2000)}`)
  else {
    if (got.problems.length) failures.push(`check(): ${got.problems.slice(0, 5).join('; ')}`)
    for (const e of got.errs) failures.push(`invariant after the soak: ${e}`)
    for (let w = 0; w < o.procs; w++) {
      const have = got.ops[w] ?? 0
      if (have !== printed[w] && have !== printed[w] + 1)
        failures.push(
          `slot ${w}: ${have} committed ops in the store, last reported ${printed[w]} (must be equal or one more)`,
        )
    }
  }
  const total = got?.total ?? 0
  console.log(
    `soak: ${o.procs} processes, ${((Date.now() - t0) / 1000).toFixed(0)} s, ${starts} starts, ${kills} kills, ${total} committed operations (${(total / ((Date.now() - t0) / 1000)).toFixed(0)}/s), ${got?.gcs ?? 0} gc runs; ${failures.length} failures (seed ${seed})`,
  )
  for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`)
  if (!o.keep) rmDir(dir)
  process.exitCode = failures.length ? 1 : 0
}

const role = process.argv[2]
if (role === '--worker')
  await worker(process.argv[3], Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]))
else if (role === '--verify') await verify(process.argv[3], Number(process.argv[4]))
else await parent(process.argv.slice(2))
