// Workload 4: 2 and 4 processes increment one shared counter concurrently, each
// increment its own committed transaction. Reports the wall time from 'go' until
// the last process finishes, and whether the final count is exact.
import { fork } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from '../lib/measure.mjs'
import { loadPersist } from '../lib/ours.mjs'
import { jsonFile, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'
import { logSyncCount, logSyncsBetween } from '../lib/syscalls.mjs'

const child = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/counter-child.mjs')
const WARM = 1100 // increments before each race (past SQLite's 1,000-page auto-checkpoint)
const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

async function race(impl, path, procs, n, env = {}) {
  const kids = []
  for (let i = 0; i < procs; i++)
    kids.push(
      fork(child, [impl, path, String(n)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, ...env },
      }),
    )
  const msgs = kids.map(
    (k) =>
      new Promise((resolve, reject) => {
        const got = []
        k.on('message', (m) => {
          got.push(m)
          if (m.error) reject(new Error(firstLine(m.error)))
          if (m.done) resolve(m)
          if (m.ready) k.emit('ready')
        })
        k.on('exit', (code) => {
          if (!got.some((m) => m.done)) reject(new Error(`${impl} child exited with code ${code}`))
        })
      }),
  )
  await Promise.all(kids.map((k) => new Promise((r) => k.once('ready', r))))
  const t0 = performance.now()
  for (const k of kids) k.send('go')
  await Promise.all(msgs)
  const ms = performance.now() - t0
  await Promise.all(kids.map((k) => (k.exitCode !== null ? null : new Promise((r) => k.once('exit', r)))))
  return ms
}

export default { run: (ctx) => runMultiprocess(ctx, 'process') }

export async function runMultiprocess(ctx, durability) {
  {
    const full = durability === 'full'
    const n = ctx.quick ? (full ? 10 : 100) : full ? 250 : 5000
    const procsList = full && ctx.quick ? [2] : [2, 4]
    const res = new Result({
      id: full ? 'multiprocess-full' : 'multiprocess',
      title: full
        ? 'Processes incrementing one shared counter, power-loss durability (group commit)'
        : 'Processes incrementing one shared counter',
      description:
        `${procsList.join(' and ')} processes each increment one counter ${n.toLocaleString('en-US')} times, every increment its own committed transaction ` +
        (full
          ? "(power-loss durability: persist 'full', lmdb sync, SQLite WAL FULL — where group commit pays off). "
          : '(process-crash durability). ') +
        `Before each race every store is warmed up with ${WARM.toLocaleString('en-US')} committed increments and kept open by the parent (SQLite then reuses its WAL in place, as a running application does, instead of growing it on every commit). ` +
        'Time from "go" until the last process is done (the median of interleaved rounds, see the notes); "exact" checks the final count. ' +
        'LevelDB (classic-level) cannot take part: a database is locked by one process.',
      columns: procsList.flatMap((p) => [
        { name: `${p} procs total`, unit: 'ms' },
        { name: `${p} procs per increment`, unit: 'µs', ratio: false },
        { name: `${p} procs exact`, ratio: false },
        ...(full ? [{ name: `${p} procs log syncs per commit`, ratio: false }] : []),
      ]),
      summary: (procsList.length - 1) * (full ? 4 : 3),
      plot: {
        type: 'bar',
        column: (procsList.length - 1) * (full ? 4 : 3),
        title: `${procsList.at(-1)} processes × ${n.toLocaleString('en-US')} increments (ms, log scale)`,
      },
    })

    const impls = [
      {
        name: `persist: root.x += 1, one turn each${full ? " (durability 'full')" : ''}`,
        kind: 'ours',
        impl: 'persist',
        async init(path) {
          const p = await loadPersist()
          if (!p.open) return `not available yet: ${p.reason}`
          let s
          try {
            s = p.open(join(path, 'c.persist'), { durability })
          } catch (e) {
            return `not available yet: ${firstLine(e)}`
          }
          s.transaction(() => {
            s.root.x = 0
          })
          s.close()
        },
        async read(path) {
          const p = await loadPersist()
          const s = p.open(join(path, 'c.persist'), { durability })
          const v = s.root.x
          s.close()
          return v
        },
        async warm(path) {
          const p = await loadPersist()
          const s = p.open(join(path, 'c.persist'), { durability })
          for (let i = 0; i < WARM; i++) s.transaction(() => (s.root.x += 1))
          s.transaction(() => (s.root.x = 0))
          return () => s.close()
        },
      },
      {
        name: `lmdb (${full ? 'sync' : 'noSync'}): transactionSync(get + put)`,
        kind: 'peer',
        impl: 'lmdb',
        async init(path) {
          const db = openLmdb(path)
          db.putSync('x', 0)
          await db.close()
        },
        async read(path) {
          const db = openLmdb(path, { sync: full })
          const v = db.get('x')
          await db.close()
          return v
        },
        async warm(path) {
          const db = openLmdb(path, { sync: full })
          for (let i = 0; i < WARM; i++) db.transactionSync(() => db.putSync('x', db.get('x') + 1))
          db.putSync('x', 0)
          return () => db.close()
        },
      },
      {
        name: `better-sqlite3 (WAL, ${full ? 'FULL' : 'NORMAL'}): UPDATE v = v + 1`,
        kind: 'peer',
        impl: 'sqlite',
        async init(path) {
          const db = openSqlite(path)
          db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)')
          db.prepare("INSERT INTO kv VALUES ('x', 0)").run()
          db.close()
        },
        async read(path) {
          const db = openSqlite(path)
          const v = db.prepare("SELECT v FROM kv WHERE k = 'x'").pluck().get()
          db.close()
          return v
        },
        async warm(path) {
          const db = openSqlite(path, { synchronous: full ? 'FULL' : 'NORMAL' })
          const inc = db.prepare("UPDATE kv SET v = v + 1 WHERE k = 'x'")
          for (let i = 0; i < WARM; i++) inc.run()
          db.prepare("UPDATE kv SET v = 0 WHERE k = 'x'").run()
          return () => db.close()
        },
      },
      {
        name: 'JSON file: read + modify + atomic rewrite (no lock)',
        kind: 'ref',
        impl: 'json',
        async init(path) {
          writeFileSync(join(path, 'c.json'), JSON.stringify({ x: 0 }))
        },
        async read(path) {
          return jsonFile(join(path, 'c.json')).read().x
        },
      },
    ]

    // Interleaved rounds: each round races every store once per process count, in a
    // rotating order, so that all see the same disk and CPU weather; a cell is the
    // median round (the note gives the spread).
    const R = ctx.quick ? 1 : full ? 5 : 3
    const list = full ? impls.filter((i) => i.impl !== 'json') : impls
    const got = new Map(
      list.map((im) => [
        im,
        {
          ms: procsList.map(() => []),
          syncs: procsList.map(() => []),
          exact: procsList.map(() => true),
          skipped: null,
        },
      ]),
    )
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < list.length; j++) {
        const im = list[(r + j) % list.length]
        const g = got.get(im)
        if (g.skipped) continue
        for (let pi = 0; pi < procsList.length; pi++) {
          const procs = procsList[pi]
          const path = join(ctx.tmp, `${im.impl}-${procs}-${r}`)
          mkdirSync(path)
          try {
            const why = await im.init(path)
            if (why) {
              g.skipped = why
              break
            }
            // Warm: WARM committed increments, counter back to 0, the handle kept open
            // during the race (a fresh SQLite WAL grows — a size change to sync — on every
            // commit until its first auto-checkpoint, and is deleted when its last
            // connection closes; a running application's WAL is reused in place).
            const unwarm = im.warm && !ctx.quick ? await im.warm(path) : null
            // The JSON file is a reference (it loses updates) and ~100× slower: a tenth of n.
            const k = im.impl === 'json' ? Math.max(10, Math.round(n / 10)) : n
            // ours in 'full' mode: the log syncs of the race, from the store's sync counter
            // (the warm handle keeps the store open, so the lock area is not reset)
            const store = full && im.kind === 'ours' && unwarm ? join(path, 'c.persist') : null
            const syncs0 = store ? logSyncCount(store) : 0
            const ms = await race(full ? `${im.impl}:full` : im.impl, path, procs, k, {})
            if (store) g.syncs[pi].push(logSyncsBetween(syncs0, logSyncCount(store)) / (procs * k))
            const final = await im.read(path)
            await unwarm?.()
            const expected = procs * k
            ctx.log(
              `${im.impl} × ${procs} (round ${r + 1}): ${ms.toFixed(0)} ms, counter ${final}/${expected}`,
            )
            g.ms[pi].push(ms)
            if (final !== expected) g.exact[pi] = `NO: ${final} of ${expected}`
          } catch (e) {
            g.skipped = im.kind === 'ours' ? `error: ${firstLine(e)}` : null
            if (!g.skipped) throw e
            break
          } finally {
            rmSync(path, { recursive: true, force: true })
          }
        }
      }
    }
    for (const im of list) {
      const g = got.get(im)
      if (g.skipped) {
        res.skip(im.name, g.skipped)
        continue
      }
      const values = []
      const spread = []
      procsList.forEach((procs, pi) => {
        const ms = median(g.ms[pi])
        const k = im.impl === 'json' ? Math.max(10, Math.round(n / 10)) : n
        values.push(ms, (ms * 1000) / (procs * k), g.exact[pi] === true ? `yes (${procs * k})` : g.exact[pi])
        if (full) {
          const sy = g.syncs[pi].filter((x) => x !== null)
          values.push(sy.length ? median(sy).toFixed(2) : '–')
        }
        if (R > 1)
          spread.push(
            `${procs} procs ${Math.min(...g.ms[pi]).toFixed(0)}–${Math.max(...g.ms[pi]).toFixed(0)} ms`,
          )
      })
      const notes = [
        im.kind === 'ref'
          ? 'not a correct counter: concurrent read-modify-write loses updates (run with a tenth of the increments)'
          : undefined,
        spread.length ? `${R} rounds: ${spread.join(', ')}` : undefined,
      ].filter(Boolean)
      res.row(im.name, im.kind, values, notes.length ? notes.join('; ') : undefined)
    }
    return res
  }
}
