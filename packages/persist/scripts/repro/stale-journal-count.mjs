#!/usr/bin/env node
// Repro (found by bad-files.mjs, "header byte 64 ^ 0x01"): hd_jr_entries (header offset
// 64) set to 1 on a closed store. The journal chunk still holds the undo entries of the
// last committed transaction, and open() rolls one of them back without noticing that
// it is stale (e.g. a transaction id / checksum in the entry would tell). The state is
// then inconsistent and reading it throws a TypeError (not a PersistError), or returns
// silently reverted data.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, PersistError, toJS } from '@persist/persist'

const dir = mkdtempSync(join(tmpdir(), 'repro-'))
const file = join(dir, 's.persist')
const s = open(file)
s.transaction(() => {
  s.root.list = Array.from({ length: 50 }, (_, i) => ({ i }))
  s.root.s = 'x'.repeat(5000)
})
s.transaction(() => {
  s.root.list.push({ i: 50 })
  s.root.t = 'y'.repeat(100)
})
s.close()
const b = readFileSync(file)
b.writeBigUInt64LE(1n, 64) // hd_jr_entries = 1
writeFileSync(file, b)
try {
  const t = open(file)
  const snap = toJS(t.root)
  const problems = t.check()
  for (const k of Object.keys(t.root)) void t.root[k]
  console.log(
    `read ok: list length ${snap.list?.length}, check(): ${problems.length ? problems.slice(0, 3).join('; ') : 'clean'}`,
  )
  t.close()
} catch (e) {
  console.log(
    `${e instanceof PersistError ? 'PersistError' : e.constructor.name} ${e.code ?? ''}: ${e.message}`,
  )
  process.exitCode = e instanceof PersistError ? 0 : 1
}
rmSync(dir, { recursive: true, force: true })
