// Workload 1b: the counter with power-loss durability: a commit that returned
// survives an OS crash. Peers: lmdb default (sync), SQLite WAL synchronous=FULL,
// LevelDB put({ sync: true }), a JSON file rewritten atomically with fsync.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measureAuto, median } from '../lib/measure.mjs'
import { loadPager, loadPersist } from '../lib/ours.mjs'
import { jsonFile, openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'
import { straceAvailable, syncCallsPerCommit } from '../lib/syscalls.mjs'
import { ourCounterRows } from './counter-ours.mjs'

export default {
  async run(ctx) {
    const N = ctx.quick ? 50 : 2000
    // A sync's latency drifts 2-5x within minutes on a shared disk: every store is
    // measured in R interleaved rounds (one ~0.5 s sample each, rotating order) and
    // its row is the median round, so each store sees the same disk weather.
    const R = ctx.quick ? 1 : 5
    const opt = ctx.quick
      ? { batch: N, iterations: 1, time: 0, warmup: false }
      : { iterations: 1, time: 0, sampleMs: 500, maxBatch: N }
    const res = new Result({
      id: 'counter-full',
      title: 'Counter, each increment committed with power-loss durability',
      description:
        'Every increment is a transaction whose commit survives power loss once it returns (one fsync/fdatasync or more per commit). ' +
        `The stores are measured in ${R} interleaved rounds (rotating order; each round one batch of up to ${N.toLocaleString('en-US')} increments, about half a second's worth, after a warm-up batch): a row is its median round, the note gives the spread. The 10,000 column is the median × 10,000.`,
      columns: [
        { name: 'per increment', unit: 'µs' },
        { name: '10,000 increments', unit: 'ms', ratio: false },
        { name: 'fsync-class calls per commit', ratio: false },
      ],
      plot: { type: 'bar', column: 0, title: 'Durable committed increment (µs, log scale)' },
    })
    // fsync/fdatasync/msync/sync_file_range per commit, counted with strace in a child.
    const fixture = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/fsync-child.mjs')
    const syncs = (impl) => {
      try {
        return syncCallsPerCommit(fixture, impl, ctx.quick ? 5 : 50, ctx.tmp)
      } catch (e) {
        ctx.log(`strace ${impl}:`, String(e?.message ?? e))
        return null
      }
    }
    const implOf = (name) =>
      /^(persist|pager)/.test(name)
        ? 'persist'
        : /^lmdb/.test(name)
          ? 'lmdb'
          : /sqlite/.test(name)
            ? 'sqlite'
            : /level/.test(name)
              ? 'level'
              : 'json'
    // rounds collect per row; the rows are added at the end (median, spread)
    const acc = new Map()
    const collect = (name, kind, m, note) => {
      const a = acc.get(name) ?? { kind, us: [], note }
      a.us.push(m.us)
      a.note = note ?? a.note
      acc.set(name, a)
    }
    if (!straceAvailable()) res.note('fsync-class calls per commit: not measured (strace is not installed)')

    const persist = await loadPersist()
    const pager = await loadPager()
    const peers = peerSteps(ctx, opt, collect)
    const steps = [
      () => ourCounterRows(ctx, res, { persist, pager, durability: 'full', opt, add: collect, N }),
      ...peers.steps,
    ]
    for (let r = 0; r < R; r++) for (let j = 0; j < steps.length; j++) await steps[(r + j) % steps.length]()
    peers.close()
    for (const [name, a] of acc) {
      const us = median(a.us)
      const spread =
        a.us.length > 1
          ? `${a.us.length} rounds: ${Math.min(...a.us).toFixed(0)}–${Math.max(...a.us).toFixed(0)} µs`
          : undefined
      res.row(name, a.kind, [us, us * 10, syncs(implOf(name))], [a.note, spread].filter(Boolean).join('; '))
    }
    return res
  },
}

/**
 * One measuring step per peer store (opened, measured, closed within the step). SQLite
 * gets a keeper connection open for the whole workload and 1,100 warm-up commits, so
 * its WAL is reused in place as in a running application (a fresh WAL grows — a size
 * change to sync — on every commit until the first auto-checkpoint, and is deleted when
 * the last connection closes). Call close() at the end.
 */
function peerSteps(ctx, opt, add) {
  const keep = openSqlite(ctx.tmp, { synchronous: 'FULL' })
  keep.exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)')
  keep.prepare("INSERT OR REPLACE INTO kv VALUES ('x', 0)").run()
  const warm = keep.prepare("UPDATE kv SET v = v + 1 WHERE k = 'x'")
  for (let i = 0; i < 1100; i++) warm.run()
  const steps = [
    async () => {
      const db = openLmdb(ctx.tmp, { sync: true })
      db.putSync('x', 0)
      const m = await measureAuto(
        'lmdb sync',
        () => db.transactionSync(() => db.putSync('x', db.get('x') + 1)),
        opt,
      )
      add('lmdb (default: sync)', 'peer', m, 'transactionSync(get + putSync)')
      await db.close()
    },
    async () => {
      const db = openSqlite(ctx.tmp, { synchronous: 'FULL' })
      const inc = db.prepare("UPDATE kv SET v = v + 1 WHERE k = 'x'")
      const m = await measureAuto('sqlite WAL FULL', () => inc.run(), opt)
      add('better-sqlite3 (WAL, synchronous=FULL)', 'peer', m, 'UPDATE kv SET v = v + 1 (autocommit)')
      db.close()
    },
    async () => {
      const db = await openLevel(ctx.tmp)
      await db.put('x', '0')
      const m = await measureAuto(
        'classic-level sync',
        async () => {
          const v = Number(await db.get('x'))
          await db.put('x', String(v + 1), { sync: true })
        },
        opt,
      )
      add('classic-level (put sync: true)', 'peer', m, 'await get + await put')
      await db.close()
    },
    async () => {
      const f = jsonFile(join(ctx.tmp, 'counter.json'), { fsync: true })
      const data = { x: 0 }
      f.write(data)
      const m = await measureAuto(
        'json fsync',
        () => {
          data.x += 1
          f.write(data)
        },
        opt,
      )
      add('JSON file, atomic rewrite + fsync', 'peer', m, 'write tmp, fsync, rename (no directory fsync)')
    },
  ]
  return { steps, close: () => keep.close() }
}
