// Workload 1 (seed 003's benchmark): a counter incremented 10,000 times, each
// increment its own committed transaction. 'process' durability: survives kill -9
// of the process, not power loss — the class of lmdb noSync, SQLite WAL
// synchronous=NORMAL, LevelDB's default (sync: false) and an atomic JSON rewrite.
import { join } from 'node:path'
import { measureAuto } from '../lib/measure.mjs'
import { loadPager, loadPersist } from '../lib/ours.mjs'
import { jsonFile, openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'
import { ourCounterRows } from './counter-ours.mjs'

export default {
  async run(ctx) {
    const N = ctx.quick ? 200 : 10_000
    const opt = ctx.quick
      ? { batch: N, iterations: 1, time: 0, warmup: false }
      : { iterations: 5, time: 1000, sampleMs: 1000, maxBatch: N }
    const res = new Result({
      id: 'counter',
      title: 'Counter to 10,000, each increment committed — process-crash durability',
      description:
        "Seed 003's benchmark: `x += 1` 10,000 times, every increment its own committed transaction. " +
        "All rows survive kill -9 of the process but not power loss (lmdb noSync, SQLite WAL synchronous=NORMAL, LevelDB's default sync:false, a JSON file rewritten atomically). " +
        "Each sample is a batch of 10,000 increments (fewer, at least one second's worth, for rows where 10,000 take longer); µs/op is the median over samples and the 10,000 column is that median × 10,000.",
      columns: [
        { name: 'per increment', unit: 'µs' },
        { name: `${N.toLocaleString('en-US')} increments`, unit: 'ms', ratio: false },
      ],
      plot: { type: 'bar', column: 0, title: 'Committed counter increment (µs, log scale)' },
    })
    const add = (name, kind, m, note) => res.row(name, kind, [m.us, (m.us * N) / 1000], note)

    // ---- ours
    const persist = await loadPersist()
    const pager = await loadPager()
    await ourCounterRows(ctx, res, { persist, pager, durability: 'process', opt, add, N })

    // ---- peers
    {
      const db = openLmdb(ctx.tmp, { sync: false })
      db.putSync('x', 0)
      const m = await measureAuto(
        'lmdb noSync',
        () => db.transactionSync(() => db.putSync('x', db.get('x') + 1)),
        opt,
      )
      add('lmdb (noSync)', 'peer', m, 'transactionSync(get + putSync)')
      await db.close()
    }
    {
      const db = openSqlite(ctx.tmp, { synchronous: 'NORMAL' })
      db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)')
      db.prepare("INSERT INTO kv VALUES ('x', 0)").run()
      const inc = db.prepare("UPDATE kv SET v = v + 1 WHERE k = 'x'")
      const m = await measureAuto('sqlite WAL NORMAL', () => inc.run(), opt)
      add('better-sqlite3 (WAL, synchronous=NORMAL)', 'peer', m, 'UPDATE kv SET v = v + 1 (autocommit)')
      db.close()
    }
    {
      const db = await openLevel(ctx.tmp)
      await db.put('x', '0')
      const m = await measureAuto(
        'classic-level',
        async () => {
          const v = Number(await db.get('x'))
          await db.put('x', String(v + 1))
        },
        opt,
      )
      add('classic-level (sync: false)', 'peer', m, 'await get + await put')
      await db.close()
    }
    {
      const f = jsonFile(join(ctx.tmp, 'counter.json'))
      const data = { x: 0 }
      f.write(data)
      const m = await measureAuto(
        'json',
        () => {
          data.x += 1
          f.write(data)
        },
        opt,
      )
      if (f.read().x !== data.x) throw new Error('json counter mismatch')
      add('JSON file, atomic rewrite (write tmp + rename)', 'peer', m, 'as lowdb/steno, node-persist')
    }
    {
      const o = { x: 0 }
      const m = await measureAuto('plain object', () => (o.x += 1), opt)
      add('plain JS object (not persistent)', 'ref', m, 'physical reference: no durability at all')
    }
    return res
  },
}
