// 5.x interop: the C example of FORMAT.md compiles against persist_format.h and reads
// a live store; FORMAT.md's dict hash test vectors match the implementation.
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { hashKey } from '@persist/objects'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, FIXTURES, fixture, REPO, tmpDir, waitFor } from './helpers.js'

const { dir, cleanup } = tmpDir('interop')
const exe = join(dir, 'read_store')
afterAll(cleanup)

beforeAll(() => {
  const cc = spawnSync(
    'cc',
    [
      '-std=c11',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-I',
      join(REPO, 'packages/pager/include'),
      join(REPO, 'docs/examples/read_store.c'),
      '-o',
      exe,
      '-lpthread',
    ],
    { encoding: 'utf8' },
  )
  if (cc.status !== 0) throw new Error(`read_store.c does not compile:\n${cc.stderr}`)
})

function readStore(file: string): Record<string, number> {
  const r = spawnSync(exe, [file], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`read_store exited ${r.status}: ${r.stderr}`)
  const out: Record<string, number> = {}
  for (const line of r.stdout.trim().split('\n')) {
    const [k, v] = line.split('=')
    out[k] = Number(v)
  }
  return out
}

/** hd_jr_entries (header offset 64) read from the file itself, bypassing every library. */
function rawJournalEntries(file: string): number {
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(8)
    readSync(fd, b, 0, 8, 64)
    return Number(b.readBigUInt64LE(0))
  } finally {
    closeSync(fd)
  }
}

function pagerFacts(file: string): {
  pageCount: number
  txid: number
  objectsMeta: number
  visits: unknown
  problems: string[]
} {
  const r = spawnSync(process.execPath, [join(FIXTURES, 'header.mjs'), file], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout)
}

describe('5.1 docs/examples/read_store.c', () => {
  it('prints hd_page_count and hd_txid equal to what the pager reports', () => {
    const store = join(dir, 'a.persist')
    const facts = fixture('make-store.mjs', [store, 'sample'])
    const c = readStore(store)
    const js = pagerFacts(store)
    expect(c.format).toBe(1)
    expect(c.page_count).toBe(js.pageCount)
    expect(c.txid).toBe(js.txid)
    expect(c.txid).toBe(facts.txid)
    expect(c.objects_meta).toBe(js.objectsMeta)
  })

  it('follows commits of a process that keeps the store open (shared open lock, robust mutex)', async () => {
    const store = join(dir, 'b.persist')
    fixture('make-store.mjs', [store, 'sample'])
    const holder = spawn(process.execPath, [join(FIXTURES, 'hold-open.mjs'), store], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      let out = ''
      holder.stdout.on('data', (d) => {
        out += d
      })
      await waitFor(() => out.includes('open'), 10_000, 'holder')
      const t0 = readStore(store).txid
      fixture('make-store.mjs', [store, 'bulk', '50', '64']) // grows the file by > 3 MiB
      const after = readStore(store)
      expect(after.txid).toBe(t0 + 1)
      expect(after.page_count).toBe(pagerFacts(store).pageCount)
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('close', r))
    }
  })

  it('rolls back the journal of a writer killed mid-transaction (EOWNERDEAD) before reading', async () => {
    const store = join(dir, 'c.persist')
    const facts = fixture('make-store.mjs', [store, 'sample'])
    // A second opener stays, so read_store is not the first opener: it must take the
    // path through pthread_mutex_timedlock → EOWNERDEAD → rollback → consistent.
    const holder = spawn(process.execPath, [join(FIXTURES, 'hold-open.mjs'), store], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let held = ''
    holder.stdout.on('data', (d) => {
      held += d
    })
    await waitFor(() => held.includes('open'), 10_000, 'holder')
    const victim = spawn(process.execPath, [join(FIXTURES, 'die-in-txn.mjs'), store], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    victim.stdout.on('data', (d) => {
      out += d
    })
    await waitFor(() => out.includes('in txn'), 10_000, 'victim to write inside a transaction')
    victim.kill('SIGKILL')
    await new Promise((r) => victim.on('close', r))
    try {
      expect(rawJournalEntries(store)).toBeGreaterThan(0) // the dead writer's undo log is pending
      const c = readStore(store) // EOWNERDEAD → rollback → consistent
      expect(c.txid).toBe(facts.txid)
      expect(rawJournalEntries(store)).toBe(0) // read_store itself rolled it back
      const js = pagerFacts(store)
      expect(js.txid).toBe(facts.txid)
      expect(js.visits).toBe(42) // the killed transaction's write is gone
      expect(js.problems).toEqual([])
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('close', r))
    }
  })
})

describe('5.3 docs/examples/read_store.py (FORMAT.md "Objects" decoded from Python)', () => {
  function readPy(file: string): { value: unknown; stderr: string } {
    const r = spawnSync('python3', [join(REPO, 'docs/examples/read_store.py'), file], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`read_store.py exited ${r.status}: ${r.stderr}`)
    return { value: JSON.parse(r.stdout), stderr: r.stderr }
  }
  function dumpJs(file: string): unknown {
    const r = spawnSync(process.execPath, [CLI, 'dump', file], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout)
  }

  it('alone (exclusive open lock): prints the same graph as persist dump — shared record, cycle, class, tombstone, UTF-16', () => {
    const store = join(dir, 'py1.persist')
    fixture('make-store.mjs', [store, 'interop'])
    const py = readPy(store).value as Record<string, unknown>
    expect(py).toEqual(dumpJs(store))
    expect(py.lead).toEqual({ $persist: 'ref', path: '$.people.joe' })
    expect(py.loop).toEqual({ n: 1, self: { $persist: 'ref', path: '$.loop' } })
  })

  it('next to an open writer (shared open lock + lk_mutex through ctypes), and after that writer is killed mid-transaction', async () => {
    const store = join(dir, 'py2.persist')
    const facts = fixture('make-store.mjs', [store, 'interop'])
    const expected = dumpJs(store)
    const holder = spawn(process.execPath, [join(FIXTURES, 'hold-open.mjs'), store], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      let held = ''
      holder.stdout.on('data', (d) => {
        held += d
      })
      await waitFor(() => held.includes('open'), 10_000, 'holder')
      const victim = spawn(process.execPath, [join(FIXTURES, 'die-in-txn.mjs'), store], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let inTxn = ''
      victim.stdout.on('data', (d) => {
        inTxn += d
      })
      await waitFor(() => inTxn.includes('in txn'), 10_000, 'victim')
      victim.kill('SIGKILL')
      await new Promise((r) => victim.on('close', r))
      expect(rawJournalEntries(store)).toBeGreaterThan(0)
      const py = readPy(store) // EOWNERDEAD → rollback in Python → pthread_mutex_consistent
      expect(py.value).toEqual(expected)
      expect(py.stderr).toBe(`txid ${facts.txid}\n`)
      expect(rawJournalEntries(store)).toBe(0)
      expect(pagerFacts(store).problems).toEqual([])
      expect(readPy(store).value).toEqual(expected) // the mutex is usable again
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('close', r))
    }
  })
})

describe('5.2 FORMAT.md', () => {
  const format = readFileSync(join(REPO, 'FORMAT.md'), 'utf8')

  it('the dict key hash test vectors match hashKey()', () => {
    // Rows of the "Key hash" test-vector table: | `key` (a JSON string literal's body) | 0x… |
    const section = format.slice(format.indexOf('### Key hash'))
    const rows = [...section.matchAll(/^\|\s*`([^`]*)`\s*\|\s*`?(0x[0-9a-fA-F]{8})`?\s*\|/gm)]
    expect(rows.length).toBeGreaterThanOrEqual(5)
    for (const [, body, hash] of rows) {
      const key = JSON.parse(`"${body}"`) as string
      expect(`0x${hashKey(key).toString(16).padStart(8, '0')}`, JSON.stringify(key)).toBe(hash.toLowerCase())
    }
    expect(rows.some(([, b]) => b === '')).toBe(true) // the empty key is a vector too
  })

  it('the header offsets in FORMAT.md match persist_format.h', () => {
    const h = readFileSync(join(REPO, 'packages/pager/include/persist_format.h'), 'utf8')
    for (const [field, off] of [
      ['hd_page_count', 24],
      ['hd_txid', 32],
      ['hd_jr_entries', 64],
      ['hd_slots', 128],
      ['hd_lock', 256],
    ] as const) {
      expect(h).toMatch(new RegExp(`${field}.*/\\*\\s*${off}\\b`))
      expect(format).toMatch(new RegExp(`\\|\\s*${off}\\s*\\|[^\\n]*${field}`))
    }
  })
})
