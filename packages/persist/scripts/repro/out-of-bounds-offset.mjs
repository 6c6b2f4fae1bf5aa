#!/usr/bin/env node
// Repro (found by bad-files.mjs): a store whose root.a list reference points past the
// end of the file. Reading it is bounds-checked (no signal), but the error is a plain
// RangeError from the pager's Mem, not a PersistError PERSIST_CORRUPT.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, PersistError, toJS } from '@persist/persist'

const dir = mkdtempSync(join(tmpdir(), 'repro-'))
const file = join(dir, 's.persist')
const s = open(file)
s.root.a = [1, 2, 3]
await null
s.close()
const b = readFileSync(file)
// header hd_slots[0] (offset 128) = heap meta page; heap meta +16 = objects meta;
// objects meta +16 = root dict; root dict +32 = entries; entry 0 value slot at +16, offset at +8
const u64 = (o) => Number(b.readBigUInt64LE(o))
const heapMeta = u64(128) * 4096
const root = u64(u64(heapMeta + 16) + 16)
const entry0 = u64(root + 32)
b.writeBigUInt64LE(BigInt(statSync(file).size), entry0 + 16 + 8) // root.a -> the end of the file
writeFileSync(file, b)
const t = open(file)
try {
  toJS(t.root)
  console.log('no error')
} catch (e) {
  console.log(
    `${e instanceof PersistError ? 'PersistError' : e.constructor.name} ${e.code ?? ''}: ${e.message}`,
  )
  process.exitCode = e instanceof PersistError ? 0 : 1
}
t.close()
rmSync(dir, { recursive: true, force: true })
