#!/usr/bin/env node
// Full disk: run a store on a small tmpfs and fill it up during writes.
//
//   node packages/persist/scripts/full-disk.mjs [--size-mib 8] [--rounds 3]
//
// Needs root (mount -t tmpfs -o size=8m tmpfs DIR); if the mount fails it prints why
// and exits 2. A child process (so a SIGBUS would show as a signal, not kill the
// harness) does, per round:
//   1. commits a known state (root.keep: 50 strings and a checksum);
//   2. fills the file system with a filler file, leaving ~1 MiB;
//   3. explicit transactions that add 256 KiB strings until one throws: it must be
//      PersistError PERSIST_NOSPC, and the transaction must be rolled back (its keys
//      absent, root.keep intact, check() == []);
//   4. with the disk full: a transaction that rewrites every string of root.keep (the
//      undo journal must grow) — if it fails it must be PERSIST_NOSPC and rolled back;
//      a turn that fails on NOSPC must leave a consistent store;
//   5. opening a NEW store on the full disk: PERSIST_NOSPC (or success), no signal;
//   6. frees the space (deletes the filler) and writes again: must succeed;
//   7. closes; a fresh process reopens and checks every committed value.
// Then the tmpfs is unmounted. Exits 1 on any failure.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, runChild, tempDir } from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)
const CHUNK = 256 * 1024

function checksum(list) {
  let h = 0
  for (const s of list) for (let i = 0; i < s.length; i += 97) h = (h * 31 + s.charCodeAt(i)) >>> 0
  return h
}

function fill(dir, leaveBytes) {
  const st = statfsSync(dir)
  const free = st.bavail * st.bsize
  const n = Math.max(0, free - leaveBytes)
  const f = join(dir, 'filler')
  try {
    writeFileSync(f, Buffer.alloc(n, 1), { flag: 'a' })
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e
  }
  return f
}

async function child(dir, rounds) {
  const { open, toJS, PersistError } = await import('@persist/persist')
  const file = join(dir, 'store.persist')
  const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`)
  const fail = (msg) => out({ fail: msg })
  const s = open(file)
  for (let round = 0; round < rounds; round++) {
    // 1. known committed state
    const keep = Array.from({ length: 50 }, (_, i) => `r${round}-keep-${i}-`.repeat(200 + i))
    s.transaction(() => {
      s.root.keep = keep
      s.root.sum = checksum(keep)
      s.root.round = round
    })
    const before = JSON.stringify(toJS(s.root))
    // 2. fill the disk
    const filler = fill(dir, 1 << 20)
    // 3. grow until NOSPC
    let added = 0
    let err
    for (let i = 0; i < 1000 && !err; i++) {
      try {
        s.transaction(() => {
          s.root[`fill${i}`] = `${String.fromCharCode(65 + (i % 26)).repeat(CHUNK - 1)}x`
          s.root[`fill${i}b`] = [i, 'y'.repeat(CHUNK)]
        })
        added++
      } catch (e) {
        err = e
        if (!(e instanceof PersistError) || e.code !== 'PERSIST_NOSPC')
          fail(`round ${round}: filling threw ${e?.code ?? e?.name}: ${e?.message}`)
        else if (s.root[`fill${i}`] !== undefined || s.root[`fill${i}b`] !== undefined)
          fail(`round ${round}: the failing transaction was not rolled back (fill${i} present)`)
      }
    }
    if (!err) fail(`round ${round}: never ran out of space`)
    let p = s.check()
    if (p.length) fail(`round ${round}: check() after NOSPC: ${p.slice(0, 3).join('; ')}`)
    if (checksum([...s.root.keep]) !== s.root.sum) fail(`round ${round}: root.keep damaged after NOSPC`)
    // 4. rewrite everything with the disk full (journal growth)
    let rewrite = 'ok'
    const fillMore = fill(dir, 0)
    try {
      s.transaction(() => {
        for (let i = 0; i < 50; i++) s.root.keep[i] = `R${round}-new-${i}-`.repeat(400 + i)
        s.root.sum = checksum([...s.root.keep])
      })
    } catch (e) {
      rewrite = e?.code ?? e?.name
      if (!(e instanceof PersistError) || e.code !== 'PERSIST_NOSPC')
        fail(`round ${round}: rewrite threw ${e?.code ?? e?.name}: ${e?.message}`)
      if (checksum([...s.root.keep]) !== s.root.sum)
        fail(`round ${round}: root.keep inconsistent after a failed rewrite`)
    }
    // a turn that runs out of space
    let turn = 'ok'
    try {
      s.root.turnBig = 'T'.repeat(4 * CHUNK)
    } catch (e) {
      turn = e?.code ?? e?.name
      if (!(e instanceof PersistError) || e.code !== 'PERSIST_NOSPC')
        fail(`round ${round}: turn threw ${e?.code ?? e?.name}: ${e?.message}`)
    }
    await null
    p = s.check()
    if (p.length)
      fail(`round ${round}: check() after the full-disk rewrite/turn: ${p.slice(0, 3).join('; ')}`)
    // 5. a new store on a full disk
    let fresh = 'ok'
    try {
      open(join(dir, `new${round}.persist`)).close()
    } catch (e) {
      fresh = e?.code ?? e?.name
      if (!(e instanceof PersistError))
        fail(`round ${round}: creating a store on a full disk threw ${e?.name}: ${e?.message}`)
    }
    rmSync(join(dir, `new${round}.persist`), { force: true })
    // 6. free the space: the store works again
    rmSync(filler, { force: true })
    rmSync(fillMore, { force: true })
    try {
      // (two transactions: pages freed by a transaction are reusable only after its
      // commit, and over the rounds the file comes close to the tmpfs size)
      s.transaction(() => {
        for (let i = 0; i < added + 2; i++) {
          delete s.root[`fill${i}`]
          delete s.root[`fill${i}b`]
        }
        delete s.root.turnBig
      })
      s.transaction(() => {
        s.root.after = 'z'.repeat(2 * CHUNK)
        s.root.afterRound = round
      })
    } catch (e) {
      fail(`round ${round}: writing after freeing space threw ${e?.code ?? e?.name}: ${e?.message}`)
    }
    p = s.check()
    if (p.length) fail(`round ${round}: check() after freeing space: ${p.slice(0, 3).join('; ')}`)
    out({ round, added, nospc: err?.code, rewrite, turn, fresh, before: before.length })
  }
  const final = {
    sum: s.root.sum,
    round: s.root.round,
    afterRound: s.root.afterRound,
    keepSum: checksum([...s.root.keep]),
    after: s.root.after?.length,
  }
  s.close()
  out({ final })
}

async function verify(dir) {
  const { open } = await import('@persist/persist')
  const s = open(join(dir, 'store.persist'), { create: false })
  const p = s.check()
  const res = {
    problems: p,
    sum: s.root.sum,
    keepSum: checksum([...s.root.keep]),
    round: s.root.round,
    afterRound: s.root.afterRound,
    after: s.root.after?.length,
  }
  s.close()
  process.stdout.write(`${JSON.stringify(res)}\n`)
}

async function parent(argv) {
  const o = parseArgs(argv, { 'size-mib': 8, rounds: 3 })
  const dir = tempDir('persist-fulldisk-')
  const mnt = join(dir, 'mnt')
  mkdirSync(mnt)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${o['size-mib']}m`, 'tmpfs', mnt], { stdio: 'pipe' })
  } catch (e) {
    console.log(
      `full-disk: cannot mount a ${o['size-mib']} MiB tmpfs at ${mnt}: ${String(e.stderr || e.message).trim()} (needs root / CAP_SYS_ADMIN)`,
    )
    rmSync(dir, { recursive: true, force: true })
    process.exit(2)
  }
  const failures = []
  try {
    const r = await runChild(SELF, ['--child', mnt, String(o.rounds)], { timeoutMs: 300_000 }).done
    const lines = r.lines.map((l) => JSON.parse(l))
    for (const l of lines) if (l.fail) failures.push(l.fail)
    if (r.code !== 0)
      failures.push(
        `writer exited with ${r.signal ?? r.code}${r.signal === 'SIGBUS' ? ' (SIGBUS: a write to an unbacked page)' : ''}: ${r.stderr.slice(0, 2000)}`,
      )
    for (const l of lines)
      if (l.round !== undefined)
        console.log(
          `round ${l.round}: ${l.added} transactions committed before ${l.nospc}; rewrite on a full disk: ${l.rewrite}; turn: ${l.turn}; new store on a full disk: ${l.fresh}`,
        )
    const fin = lines.find((l) => l.final)?.final
    const v = await runChild(SELF, ['--verify', mnt], { timeoutMs: 120_000 }).done
    const got = v.lines.length ? JSON.parse(v.lines[0]) : undefined
    if (!got) failures.push(`verify child failed: ${v.signal ?? v.code}: ${v.stderr.slice(0, 2000)}`)
    else {
      if (got.problems.length) failures.push(`check() after reopen: ${got.problems.slice(0, 3).join('; ')}`)
      if (got.keepSum !== got.sum) failures.push('root.keep does not match its checksum after reopen')
      if (
        fin &&
        (got.sum !== fin.sum ||
          got.round !== fin.round ||
          got.afterRound !== fin.afterRound ||
          got.after !== fin.after)
      )
        failures.push(
          `reopened state ${JSON.stringify(got)} differs from the last committed ${JSON.stringify(fin)}`,
        )
      if (got.round !== o.rounds - 1 || got.afterRound !== o.rounds - 1)
        failures.push(`reopened state is not the last round's: ${JSON.stringify(got)}`)
    }
  } finally {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' })
    } catch (e) {
      failures.push(`umount failed: ${String(e.stderr || e.message).trim()}`)
    }
    if (!existsSync(join(mnt, 'store.persist'))) rmSync(dir, { recursive: true, force: true })
  }
  for (const f of failures) console.log(`FAIL ${f}`)
  console.log(`full-disk: ${o.rounds} rounds on a ${o['size-mib']} MiB tmpfs, ${failures.length} failures`)
  process.exitCode = failures.length ? 1 : 0
}

const role = process.argv[2]
if (role === '--child') await child(process.argv[3], Number(process.argv[4]))
else if (role === '--verify') await verify(process.argv[3])
else await parent(process.argv.slice(2))
