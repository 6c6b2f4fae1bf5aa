// The libraries a user would otherwise pick, opened the way their docs recommend.
// Each helper creates its files under `dir` (a fresh temporary directory).
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { open as lmdbOpen } from 'lmdb'

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3')

/** Versions of the peers, for the report. */
export function peerVersions() {
  const v = (name) =>
    JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
  const db = new Database(':memory:')
  const sqlite = db.prepare('select sqlite_version() as v').get().v
  db.close()
  return {
    lmdb: v('lmdb'),
    'better-sqlite3': `${v('better-sqlite3')} (SQLite ${sqlite})`,
    'classic-level': v('classic-level'),
    tinybench: v('tinybench'),
    vega: v('vega'),
    'vega-lite': v('vega-lite'),
  }
}

/**
 * LMDB through lmdb-js. `sync: false` → noSync (the OS flushes later; survives a
 * process crash, not power loss), `sync: true` → LMDB's default durable commit.
 */
export function openLmdb(dir, { sync = false, mapSize, name = 'lmdb' } = {}) {
  return lmdbOpen({
    path: join(dir, name),
    noSync: !sync,
    // lmdb-js defaults to overlapping/async commits for put(); all our calls are
    // putSync/transactionSync, each a real committed write transaction.
    ...(mapSize ? { mapSize } : {}),
  })
}

/**
 * better-sqlite3 in WAL mode. synchronous NORMAL: WAL is not fsynced per commit
 * (survives a process crash); FULL: one fsync of the WAL per commit.
 */
export function openSqlite(dir, { synchronous = 'NORMAL', name = 'db.sqlite' } = {}) {
  const db = new Database(join(dir, name))
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma('busy_timeout = 10000')
  return db
}

/** LevelDB through classic-level (async API; `sync` per write is an option of put). */
export async function openLevel(dir, { name = 'level', valueEncoding = 'utf8' } = {}) {
  const db = new ClassicLevel(join(dir, name), { valueEncoding })
  await db.open()
  return db
}

/**
 * A JSON document written atomically, as lowdb (steno) and node-persist do: write
 * a temporary file, then rename it over the old one. `fsync` adds the fsync that
 * makes the rename durable on power loss.
 */
export function jsonFile(path, { fsync = false } = {}) {
  const tmp = `${path}.${process.pid}.tmp`
  return {
    path,
    read() {
      return JSON.parse(readFileSync(path, 'utf8'))
    },
    write(value) {
      const text = JSON.stringify(value)
      if (fsync) {
        const fd = openSync(tmp, 'w')
        writeSync(fd, text)
        fsyncSync(fd)
        closeSync(fd)
      } else {
        writeFileSync(tmp, text)
      }
      renameSync(tmp, path)
    },
  }
}
