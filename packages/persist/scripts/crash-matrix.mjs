#!/usr/bin/env node
// Crash matrix: workloads × kill -9 of a child at random moments.
//
//   node packages/persist/scripts/crash-matrix.mjs --trials N | --minutes M
//        [--workers 2] [--seed S] [--only w1,w2] [--growth-trials G]
//        [--max-delay-ms 250] [--durability process|full] [--keep-failures DIR] [--quiet]
//
// --durability full runs every store (child, reader, verifier) in durability 'full':
// the kill then lands in group commit (record published, log sync, store writes) and
// the verifier's open replays the log. file-growth is left out unless --growth-trials
// asks for it (each of its commits logs 160 MiB).
//
// Each trial: a child opens a fresh store, runs one workload (workloads.mjs) step by
// step and prints "committed k" after each step's commit returned. The parent kills
// it with SIGKILL either after a random delay (from its start, or from its first commit)
// or right after it read a random "committed K" line. The parent then reads ALL of the
// child's output (lines still in the pipe count) to learn the last reported commit k,
// and a verifier process reopens the store and checks:
//   * check() returns [] (else: corrupt);
//   * the state equals the model after step k or step k+1 (the kill may land after
//     a commit but before its line) — equal to an earlier step: committed-lost;
//     equal to none: corrupt;
//   * gc() then check() again: still [] and the state unchanged; for workloads without
//     cycles gc() frees nothing (a leak otherwise).
// Prints one line per workload: "<name>: N trials, C corrupt, L committed-lost, O other"
// and a total; exits 1 on any failure.
//
// The file-growth workload (7 × 160 MiB values: the file passes 1 GiB) runs apart from
// the round-robin, one at a time (disk use), --growth-trials times (default trials/200,
// at least 2 when all workloads run).
import { copyFileSync, existsSync, mkdirSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  diff,
  JsonChild,
  mix,
  parseArgs,
  pool,
  rmDir,
  rng,
  runChild,
  serveJsonLines,
  sleep,
  table,
  tempDir,
} from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)
const role = process.argv[2]

// ---- child: run a workload until killed ---------------------------------------

async function child(args) {
  const { open, toJS } = await import('@persist/persist')
  const { workloads, storeFiles } = await import('./workloads.mjs')
  // pre-spawned: the modules are loaded; wait for "go NAME SEED DIR" on stdin
  if (args.length === 0) args = (await firstLine()).split(' ').slice(1)
  const [name, seedStr, dir, durability] = args
  const w = workloads[name]
  const seed = Number(seedStr)
  const stores = storeFiles(dir, w).map((f) => open(f, { maxSize: 8 * 2 ** 30, durability }))
  const INNER = new Error('inner rollback (expected)')
  const ctx = {
    model: false,
    get root() {
      return stores[0].root
    },
    get root2() {
      return stores[1]?.root
    },
    tx: (fn) => stores[0].transaction(fn),
    nested: (fn) => {
      try {
        stores[0].transaction(() => {
          fn()
          throw INNER
        })
      } catch (e) {
        if (e !== INNER) throw e
      }
    },
    gc: () => stores[0].gc(),
    copy: (v) => toJS(v),
  }
  // Blocking writes to fd 1: process.stdout queues writes in memory when the pipe is
  // full, and a turn loop that never yields to the event loop would then report
  // commits the parent never sees (lines lost at the kill).
  const out = (s) => writeAll(`${s}\n`)
  out('ready')
  const until = Date.now() + 60_000
  for (let k = 0; Date.now() < until; k++) {
    const r = rng(mix(seed, k))
    const run = () => (k === 0 ? w.init(ctx, r) : w.step(ctx, r, k))
    if (w.mode === 'txn') stores[0].transaction(run)
    else {
      run()
      await null // ends the turn: the commit microtasks run before this continuation
    }
    out(`committed ${k}`)
  }
  for (const s of stores) s.close()
}

function writeAll(str) {
  const b = Buffer.from(str)
  for (let off = 0; off < b.length; ) {
    try {
      off += writeSync(1, b, off)
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e
    }
  }
}

function firstLine() {
  return new Promise((resolve) => {
    let buf = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i >= 0) {
        process.stdin.pause()
        resolve(buf.slice(0, i))
      }
    })
  })
}

// ---- reader: open / read / check an invariant / close, until stdin ends ----------

async function reader(file, durability) {
  const { open } = await import('@persist/persist')
  process.stdout.write('up\n')
  let stop = false
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => {
    stop = true
  })
  let reads = 0
  let bad = 0
  let errors = 0
  let first
  let maxMs = 0
  while (!stop) {
    const t = performance.now()
    try {
      const s = open(file, { create: false, lockTimeoutMs: 5000, durability })
      const root = s.root
      const n = root.n
      if (n !== undefined) {
        const m = root.m
        const l = root.l
        const len = l.length
        const last = len ? l[len - 1] : 0
        if (m !== 2 * n || last !== n || len !== Math.min(n, 30)) {
          bad++
          first ??= `n=${n} m=${m} len=${len} last=${last}`
        }
      }
      reads++
      s.close()
    } catch (e) {
      errors++
      first ??= `${e?.code ?? ''} ${e?.message ?? e}`
    }
    maxMs = Math.max(maxMs, performance.now() - t)
    await new Promise((r) => setImmediate(r))
  }
  process.stdout.write(`${JSON.stringify({ reads, bad, errors, first, maxMs: Math.round(maxMs) })}\n`)
}

// ---- verifier: reopen, compare with the model, check ---------------------------

async function verifier() {
  const { open } = await import('@persist/persist')
  const { workloads, storeFiles, modelStates } = await import('./workloads.mjs')
  const { toJS } = await import('@persist/persist')
  await serveJsonLines(({ name, seed, dir, k, durability }) => {
    const w = workloads[name]
    const files = storeFiles(dir, w)
    const summarize = (root, model) => (w.summarize ? w.summarize(root, model) : model ? root : toJS(root))
    // model states 0..k+1 (and earlier ones only when needed), per store
    const results = []
    for (let si = 0; si < files.length; si++) {
      const file = files[si]
      if (!existsSync(file)) {
        if (k < 0) continue
        return { ok: false, kind: 'committed-lost', detail: `${file} does not exist after commit ${k}` }
      }
      let store
      let state
      try {
        store = open(file, { create: false, lockTimeoutMs: 10_000, maxSize: 8 * 2 ** 30, durability })
        // garbage cycles awaiting gc() are not problems for check() (audit() counts
        // them); an unreachable block or record it reports is a leak in any workload
        const problems = store.check()
        if (problems.length)
          return { ok: false, kind: 'corrupt', detail: `check(): ${problems.slice(0, 5).join('; ')}` }
        state = summarize(store.root, false)
      } catch (e) {
        try {
          store?.close()
        } catch {}
        return { ok: false, kind: 'corrupt', detail: `reopen/read threw ${e?.code ?? ''}: ${e?.stack ?? e}` }
      }
      // compare with the model after k and k+1; on mismatch search earlier states
      let match
      let firstDiff
      const gen = modelStates(name, seed, mix, rng)
      if (k < 0 && diff(state, {}) === undefined) match = 'empty'
      for (let j = 0; j <= k + 1 && match === undefined; j++) {
        const roots = gen.next().value
        if (j < k) continue
        const d = diff(state, summarize(roots[si], true))
        if (d === undefined) match = j
        else if (j === Math.max(k, 0)) firstDiff = `vs model after step ${j}: ${d}`
      }
      if (match === undefined) {
        const gen2 = modelStates(name, seed, mix, rng)
        for (let j = 0; j < k && match === undefined; j++) {
          if (diff(state, summarize(gen2.next().value[si], true)) === undefined) {
            store.close()
            return {
              ok: false,
              kind: 'committed-lost',
              detail: `${file}: state is the model after step ${j}, but step ${k} was reported committed`,
            }
          }
        }
        store.close()
        return { ok: false, kind: 'corrupt', detail: `${file}: state matches no model state: ${firstDiff}` }
      }
      try {
        if (w.check) {
          const msg = w.check(store)
          if (msg) {
            store.close()
            return { ok: false, kind: 'corrupt', detail: msg }
          }
        }
        const g = store.gc()
        if (w.noLeak && g.freedObjects > 0) {
          store.close()
          return {
            ok: false,
            kind: 'leak',
            detail: `${file}: gc() after recovery freed ${g.freedObjects} objects (${g.freedBytes} bytes) in a workload without cycles`,
          }
        }
        const problems = store.check()
        if (problems.length) {
          store.close()
          return {
            ok: false,
            kind: 'corrupt',
            detail: `check() after gc(): ${problems.slice(0, 5).join('; ')}`,
          }
        }
        const d = diff(summarize(store.root, false), state)
        if (d) {
          store.close()
          return { ok: false, kind: 'corrupt', detail: `gc() changed reachable state: ${d}` }
        }
        store.close()
      } catch (e) {
        try {
          store.close()
        } catch {}
        return {
          ok: false,
          kind: 'corrupt',
          detail: `post-recovery gc/check threw ${e?.code ?? ''}: ${e?.stack ?? e}`,
        }
      }
      results.push(match)
    }
    return { ok: true, match: results }
  })
}

// ---- parent ----------------------------------------------------------------------

async function parent(argv) {
  const o = parseArgs(argv, {
    trials: 0,
    minutes: 0,
    workers: 2,
    seed: 0,
    only: '',
    'growth-trials': -1,
    'max-delay-ms': 250,
    durability: 'process',
    'keep-failures': '',
    quiet: false,
    // harness self-test: tell the verifier a commit 3 steps later than the child
    // reported, so every trial must fail (proves failures are detected and reported)
    'self-test-break': false,
  })
  if (!o.trials && !o.minutes) o.trials = 100
  if (o.durability !== 'process' && o.durability !== 'full')
    throw new Error(`--durability must be process or full, not ${o.durability}`)
  const { workloadNames, workloads } = await import('./workloads.mjs')
  const names = o.only ? o.only.split(',') : workloadNames
  for (const n of names)
    if (!workloads[n]) throw new Error(`unknown workload ${n}; known: ${workloadNames.join(', ')}`)
  const rotation = names.filter((n) => workloads[n].weight !== 0)
  const wantGrowth = names.includes('file-growth')
  let growthTrials = o['growth-trials']
  if (growthTrials < 0)
    growthTrials =
      wantGrowth && o.durability === 'process'
        ? Math.max(2, Math.floor((o.trials || o.minutes * 300) / 200))
        : 0
  const baseSeed = o.seed || (Date.now() % 1_000_000_000) + 1
  const master = rng(baseSeed)
  const deadline = o.minutes ? Date.now() + o.minutes * 60_000 : Infinity
  const totalWanted = o.trials || Infinity
  const stats = Object.fromEntries(
    names.map((n) => [n, { trials: 0, corrupt: 0, lost: 0, other: 0, steps: 0, maxFile: 0 }]),
  )
  const failures = []
  const verifiers = []
  const t0 = Date.now()
  console.log(
    `crash-matrix: seed ${baseSeed}, workloads ${names.length}, ${o.trials ? `${o.trials} trials` : `${o.minutes} minutes`}, ${o.workers} workers, durability '${o.durability}'`,
  )

  let growthRunning = false
  let growthDone = 0
  let rrIndex = 0
  let started = 0
  // Ctrl-C / SIGTERM: start no new trial, let the running ones finish, print the totals.
  let interrupted = false
  const interrupt = () => {
    if (interrupted) process.exit(130)
    interrupted = true
    console.log('interrupted: finishing the running trials, then the totals (again to quit at once)')
  }
  process.on('SIGINT', interrupt)
  process.on('SIGTERM', interrupt)
  const more = () => !interrupted && started < totalWanted && Date.now() < deadline
  const pickTrial = () => {
    // growth trials: spread over the run, one at a time
    const due = growthTrials > 0 && growthDone < growthTrials && !growthRunning
    const frac = o.trials ? started / o.trials : (Date.now() - t0) / (o.minutes * 60_000)
    if (due && (frac >= growthDone / growthTrials || rotation.length === 0)) {
      growthRunning = true
      growthDone++
      return 'file-growth'
    }
    if (rotation.length === 0) return undefined
    return rotation[rrIndex++ % rotation.length]
  }

  await pool(o.workers, more, async (_i, wi) => {
    const name = pickTrial()
    if (name === undefined) {
      await sleep(50)
      return
    }
    started++
    verifiers[wi] ??= new JsonChild(SELF, ['--verifier'])
    const seed = master.next()
    const res = await trial(name, seed, master, o, verifiers[wi])
    if (name === 'file-growth') growthRunning = false
    const s = stats[name]
    s.trials++
    s.steps += Math.max(res.k, 0)
    s.maxFile = Math.max(s.maxFile, res.fileBytes ?? 0)
    if (!res.ok) {
      if (res.kind === 'corrupt') s.corrupt++
      else if (res.kind === 'committed-lost') s.lost++
      else s.other++
      failures.push({ name, seed, ...res })
      console.log(`FAIL ${name} seed ${seed} k=${res.k} kill=${res.how}: ${res.kind}: ${res.detail}`)
      if (o['keep-failures'] && res.dir) {
        const to = join(o['keep-failures'], `${name}-${seed}`)
        mkdirSync(to, { recursive: true })
        for (const f of ['a.persist', 'b.persist'])
          if (existsSync(join(res.dir, f))) copyFileSync(join(res.dir, f), join(to, f))
      }
    }
    if (res.dir) rmDir(res.dir)
    const done = Object.values(stats).reduce((a, b) => a + b.trials, 0)
    if (!o.quiet && done % 500 === 0)
      console.log(
        `  … ${done} trials, ${failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      )
  })
  for (const v of verifiers) v?.close()
  for (const c of spare.values()) c.proc.kill('SIGKILL')

  const rows = [['workload', 'trials', 'corrupt', 'committed-lost', 'other', 'avg commits', 'max file MiB']]
  const tot = { trials: 0, corrupt: 0, lost: 0, other: 0 }
  for (const n of names) {
    const s = stats[n]
    console.log(`${n}: ${s.trials} trials, ${s.corrupt} corrupt, ${s.lost} committed-lost, ${s.other} other`)
    rows.push([
      n,
      s.trials,
      s.corrupt,
      s.lost,
      s.other,
      s.trials ? (s.steps / s.trials).toFixed(1) : '-',
      (s.maxFile / 2 ** 20).toFixed(0),
    ])
    for (const k of Object.keys(tot)) tot[k] += s[k]
  }
  console.log(table(rows))
  const secs = ((Date.now() - t0) / 1000).toFixed(1)
  console.log(
    `TOTAL: ${tot.trials} trials, ${tot.corrupt} corrupt, ${tot.lost} committed-lost, ${tot.other} other (${secs} s, seed ${baseSeed})`,
  )
  process.exitCode = failures.length ? 1 : 0
}

const spare = new Map()
// slow workloads alternate: even trials kill after commit 7..9 (the file-growth
// workload then really passes 1 GiB), odd ones after a random delay
let growthSeen = 0
function spawnSpare() {
  let handler = () => {}
  const c = runChild(SELF, ['--child'], {
    stdin: 'pipe',
    timeoutMs: 600_000,
    onLine: (line, p) => handler(line, p),
  })
  c.proc.stdin.on('error', () => {})
  c.setOnLine = (h) => {
    handler = h
  }
  return c
}

/** One trial: spawn, kill, verify. */
async function trial(name, seed, master, o, verifier) {
  const { workloads, storeFiles } = await import('./workloads.mjs')
  const w = workloads[name]
  const dir = tempDir('persist-crash-')
  const window = w.killWindowMs ?? o['max-delay-ms']
  // kill plan: 15% a random delay from the start (may land in open/creation/init),
  // 55% a random delay after "committed 0", 30% right after reading "committed K"
  const roll = master.int(100)
  const how = w.readers
    ? 'reader-up+'
    : w.killWindowMs
      ? growthSeen++ % 2 === 0
        ? 'after-commit'
        : 'commit0+'
      : roll < 15
        ? 'spawn+'
        : roll < 70
          ? 'commit0+'
          : 'after-commit'
  const delay = how === 'spawn+' ? master.int(300) : master.int(window)
  const target = w.killWindowMs ? 7 + master.int(3) : master.int(25)
  let killed = false
  // every kill timer of this trial: cleared once the child is dead (a pending 120 s
  // timer of a file-growth trial kept the parent alive 85 s after its totals)
  const timers = []
  const later = (fn, ms) => timers.push(setTimeout(fn, ms))
  let readerRun
  let readerUp
  const kill = (p) => {
    if (!killed) {
      killed = true
      p.kill('SIGKILL')
    }
  }
  const tStart = performance.now()
  let tReady = 0
  // a pre-spawned child has its modules loaded already (startup overlaps the
  // previous trial's verification); it starts when it reads "go ..."
  const c = spare.get(verifier) ?? spawnSpare()
  spare.set(verifier, spawnSpare())
  c.proc.stdin.write(`go ${name} ${seed} ${dir} ${o.durability}\n`)
  c.setOnLine((line, p) => {
    if (line === 'committed 0' && how === 'commit0+') later(() => kill(p), delay)
    if (line === 'ready') {
      tReady = performance.now()
      // a slow workload may not reach the target commit soon: kill it anyway
      if (how === 'after-commit') later(() => kill(p), w.killWindowMs ? 120_000 : 2 * window)
      if (w.readers) {
        readerRun = runChild(SELF, ['--reader', `${dir}/a.persist`, o.durability], {
          stdin: 'pipe',
          timeoutMs: 120_000,
          onLine: (l) => {
            if (l !== 'up') return
            readerUp()
            // readers workload: the kill comes while the reader is reading
            later(() => kill(c.proc), delay)
          },
        })
        readerRun.up = new Promise((r) => {
          readerUp = r
        })
      }
    } else if (how === 'after-commit' && line === `committed ${target}`) kill(c.proc)
  })
  if (how === 'spawn+') later(() => kill(c.proc), delay)
  // safety: a child that never reaches its target is killed anyway
  later(() => kill(c.proc), w.killWindowMs ? 130_000 : 10_000)
  const r = await c.done
  for (const t of timers) clearTimeout(t)
  let k = -1
  for (const line of r.lines) if (line.startsWith('committed ')) k = Number(line.slice(10))
  const base = { k, how: `${how}${how === 'after-commit' ? target : delay}`, dir }
  if (r.signal !== 'SIGKILL' || !killed) {
    if (readerRun) {
      readerRun.proc.kill('SIGKILL')
      await readerRun.done
    }
    return {
      ...base,
      ok: false,
      kind: 'child-error',
      detail: `child exited ${r.code ?? r.signal}: ${r.stderr.slice(0, 2000)}`,
    }
  }
  let fileBytes = 0
  for (const f of storeFiles(dir, w)) if (existsSync(f)) fileBytes = Math.max(fileBytes, statSync(f).size)
  if (readerRun) {
    // let the reader run on past the kill (it must recover the dead writer's lock), then
    // stop it; the stop latency is measured once it is up (its startup is not counted)
    // (the guard timer is cleared: a pending 60 s timer kept the parent alive after the run)
    let guard
    await Promise.race([readerRun.up, new Promise((r) => (guard = setTimeout(r, 60_000)))])
    clearTimeout(guard)
    await sleep(40)
    const t = performance.now()
    readerRun.proc.stdin.end()
    const rr = await readerRun.done
    const ms = performance.now() - t
    const last = rr.lines.at(-1)
    const rep = last?.startsWith('{') ? JSON.parse(last) : undefined
    if (!rep)
      return {
        ...base,
        fileBytes,
        ok: false,
        kind: 'reader',
        detail: `reader died or hung (${rr.signal ?? rr.code}, ${ms.toFixed(0)} ms): ${rr.stderr.slice(0, 1000)}`,
      }
    if (rep.bad || rep.errors)
      return { ...base, fileBytes, ok: false, kind: 'reader', detail: `reader: ${JSON.stringify(rep)}` }
    if (process.env.REL_TIMING) console.log(`reader stop ${ms.toFixed(0)} ms ${JSON.stringify(rep)}`)
    if (ms > 10_000)
      return {
        ...base,
        fileBytes,
        ok: false,
        kind: 'reader',
        detail: `reader took ${ms.toFixed(0)} ms (> 10 s) to stop after the writer's death (${JSON.stringify(rep)})`,
      }
  }
  const tV = performance.now()
  const v = await verifier.request(
    { name, seed, dir, k: o['self-test-break'] ? k + 3 : k, durability: o.durability },
    w.killWindowMs ? 600_000 : 120_000,
  )
  if (process.env.REL_TIMING)
    console.log(
      `timing ${name} ${how}: ready ${(tReady - tStart).toFixed(0)} ms, run+kill ${(tV - tStart).toFixed(0)} ms, verify ${(performance.now() - tV).toFixed(0)} ms`,
    )
  if (v.died)
    return {
      ...base,
      fileBytes,
      ok: false,
      kind: 'verifier-crash',
      detail: `verifier ${v.hang ? 'hung' : `died (${v.signal ?? v.code})`}: ${String(v.stderr).slice(-2000)}`,
    }
  return { ...base, fileBytes, ...v }
}

if (role === '--child') await child(process.argv.slice(3))
else if (role === '--verifier') await verifier()
else if (role === '--reader') await reader(process.argv[3], process.argv[4])
else await parent(process.argv.slice(2))
