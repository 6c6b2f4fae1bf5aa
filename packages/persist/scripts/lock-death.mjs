#!/usr/bin/env node
// Lock-holder death: kill -9 a process that holds the store lock in the middle of a
// transaction while 3 other processes wait for the lock.
//
//   node packages/persist/scripts/lock-death.mjs --trials N [--seed S] [--limit-ms 1000]
//
// Each trial: a (pre-spawned) holder opens the store, commits one turn (root.h += 1),
// then starts a turn that adds 1000 to root.total and spins with the lock held. Three
// long-lived waiter processes are told to run one turn each (root.total += 1, a list
// push) and block on the lock; once all three say they are about to touch the store
// (plus a short settle delay) the parent kills the holder with SIGKILL. Checked:
//   * every waiter finishes its turn within --limit-ms of the kill (no hang; no
//     PERSIST_LOCKED: waiters use a 30 s lock timeout);
//   * at the end: root.total == 3 × trials (the holder's +1000s were rolled back),
//     root.h == trials, root.log has 3 × trials entries, check() == [].
// Prints latency figures (kill → waiter done, ms) and exits 1 on any failure.
import { fileURLToPath } from 'node:url'
import { deadlineAfter, parseArgs, rmDir, runChild, sleep, tempDir } from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)
const now = () => performance.timeOrigin + performance.now()

async function holder() {
  const { open } = await import('@persist/persist')
  const file = await new Promise((resolve) => {
    let buf = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d) => {
      buf += d
      if (buf.includes('\n')) {
        process.stdin.pause()
        resolve(buf.slice(0, buf.indexOf('\n')).slice(3))
      }
    })
  })
  const store = open(file, { lockTimeoutMs: 30_000 })
  store.root.h = (store.root.h ?? 0) + 1
  await null // commit that turn
  const root = store.root // new turn: takes the lock
  root.total = (root.total ?? 0) + 1000
  root.log ??= []
  root.log.push('holder (must be rolled back)')
  process.stdout.write('holding\n')
  const until = Date.now() + 120_000
  while (Date.now() < until) {} // keeps the lock until killed
}

async function waiter(file, id) {
  const { open } = await import('@persist/persist')
  const store = open(file, { lockTimeoutMs: 30_000 })
  process.stdout.write('up\n')
  process.stdin.setEncoding('utf8')
  let buf = ''
  for await (const d of process.stdin) {
    buf += d
    while (buf.includes('\n')) {
      const line = buf.slice(0, buf.indexOf('\n'))
      buf = buf.slice(buf.indexOf('\n') + 1)
      if (line !== 'go') continue
      process.stdout.write('waiting\n')
      try {
        const root = store.root // blocks here until the holder dies
        root.total = (root.total ?? 0) + 1
        root.log ??= []
        root.log.push(id)
        await null
        process.stdout.write(`done ${now()}\n`)
      } catch (e) {
        process.stdout.write(`error ${e?.code ?? ''} ${String(e?.message ?? e).replace(/\n/g, ' ')}\n`)
      }
    }
  }
  store.close()
}

async function parent(argv) {
  const o = parseArgs(argv, { trials: 100, 'limit-ms': 1000, 'settle-ms': 15, keep: false })
  const { open } = await import('@persist/persist')
  const dir = tempDir('persist-lockdeath-')
  const file = `${dir}/lock.persist`
  open(file).close()
  const t0 = Date.now()
  const pending = [] // per waiter: queue of resolvers for its next line
  const early = [] // per waiter: lines that arrived before anyone asked for them
  const waiters = [0, 1, 2].map((i) => {
    pending[i] = []
    early[i] = []
    const c = runChild(SELF, ['--waiter', file, `w${i}`], {
      stdin: 'pipe',
      onLine: (line) => {
        const r = pending[i].shift()
        if (r) r(line)
        else early[i].push(line)
      },
    })
    c.proc.stdin.on('error', () => {})
    return c
  })
  const nextLine = (i) =>
    early[i].length ? Promise.resolve(early[i].shift()) : new Promise((r) => pending[i].push(r))
  for (let i = 0; i < 3; i++) {
    const l = await nextLine(i)
    if (l !== 'up') throw new Error(`waiter ${i} did not start: ${l}`)
  }
  const spawnHolder = () => {
    let onLine = () => {}
    const c = runChild(SELF, ['--holder'], { stdin: 'pipe', onLine: (l) => onLine(l) })
    c.proc.stdin.on('error', () => {})
    c.next = () =>
      new Promise((r) => {
        onLine = r
      })
    return c
  }
  let next = spawnHolder()
  const lat = []
  const failures = []
  for (let t = 0; t < o.trials; t++) {
    const h = next
    next = spawnHolder()
    const holding = h.next()
    h.proc.stdin.write(`go ${file}\n`)
    const hl = await Promise.race([holding, deadlineAfter(30_000, 'timeout')])
    if (hl !== 'holding') {
      failures.push(`trial ${t}: holder did not take the lock (${hl})`)
      h.proc.kill('SIGKILL')
      break
    }
    const waits = [0, 1, 2].map((i) => nextLine(i))
    const dones = [0, 1, 2].map((i) => waits[i].then(() => nextLine(i)))
    for (const i of [0, 1, 2]) waiters[i].proc.stdin.write('go\n')
    await Promise.all(waits)
    await sleep(o['settle-ms']) // let the waiters reach the lock
    const killAt = now()
    h.proc.kill('SIGKILL')
    const timeout = deadlineAfter(o['limit-ms'] + 30_000, 'hang')
    const res = await Promise.all(dones.map((d) => Promise.race([d, timeout])))
    await h.done
    for (let i = 0; i < 3; i++) {
      const line = res[i]
      if (!line.startsWith('done ')) {
        failures.push(`trial ${t}: waiter ${i}: ${line}`)
        continue
      }
      const ms = Number(line.slice(5)) - killAt
      lat.push(ms)
      if (ms > o['limit-ms'])
        failures.push(
          `trial ${t}: waiter ${i} proceeded ${ms.toFixed(1)} ms after the kill (limit ${o['limit-ms']} ms)`,
        )
    }
    if (failures.length > 20) break
  }
  next.proc.kill('SIGKILL')
  for (const w of waiters) w.proc.stdin.end()
  await Promise.all(waiters.map((w) => w.done))
  // final totals
  const s = open(file, { create: false })
  const total = s.root.total ?? 0
  const hh = s.root.h ?? 0
  const logLen = s.root.log?.length ?? 0
  const holderEntries = s.root.log ? [...s.root.log].filter((x) => String(x).startsWith('holder')).length : 0
  const problems = s.check()
  s.close()
  const trials = lat.length / 3
  if (total !== 3 * o.trials)
    failures.push(
      `root.total = ${total}, expected ${3 * o.trials} (3 waiter turns per trial, holder turns rolled back)`,
    )
  if (hh !== o.trials)
    failures.push(`root.h = ${hh}, expected ${o.trials} (one committed holder turn per trial)`)
  if (logLen !== 3 * o.trials || holderEntries)
    failures.push(`root.log has ${logLen} entries (${holderEntries} from holders), expected ${3 * o.trials}`)
  if (problems.length) failures.push(`check(): ${problems.slice(0, 5).join('; ')}`)
  lat.sort((a, b) => a - b)
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1) : '-')
  console.log(
    `lock-death: ${o.trials} kills, ${trials} complete trials, waiter latency after kill ms: p50 ${q(0.5)} p99 ${q(0.99)} max ${q(1 - 1e-9)}; total ${total}, h ${hh}; ${failures.length} failures (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  )
  for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`)
  if (!o.keep) rmDir(dir)
  process.exitCode = failures.length ? 1 : 0
}

const role = process.argv[2]
if (role === '--holder') await holder()
else if (role === '--waiter') await waiter(process.argv[3], process.argv[4])
else await parent(process.argv.slice(2))
