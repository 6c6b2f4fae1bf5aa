import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format, type ObjectHooks, Objects, type RecordRef } from '@persist/objects'
import { afterAll } from 'vitest'

/** A temporary directory removed after the test file. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'persist-objects-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

let n = 0
export function freshPath(dir: string): string {
  return join(dir, `s${n++}.persist`)
}

export function open(path: string, hooks?: Partial<ObjectHooks>): Objects {
  return Objects.open(path, { hooks })
}

/** Runs fn in a transaction of o and commits. */
export function tx<T>(o: Objects, fn: () => T): T {
  o.begin()
  try {
    const r = fn()
    o.commit()
    return r
  } catch (e) {
    if (o.inTransaction) o.abort()
    throw e
  }
}

export function off(v: unknown): number {
  return (v as RecordRef).off
}

/** The offset of the value slot of dict d's entry for key (FORMAT.md "Dict records"). */
export function valueSlotOf(o: Objects, d: number, key: string): number {
  const m = o.pager.mem
  const ents = m.u64(d + format.DC_ENTRIES)
  const used = m.u32(d + format.DC_USED)
  const keys = o.dictKeys(d)
  let live = -1
  for (let i = 0; i < used; i++) {
    const e = ents + i * format.ENTRY
    if (m.u8(e) === format.T_DELETED) continue
    live++
    if (keys[live] === key) return e + format.SLOT
  }
  throw new Error(`no key ${key}`)
}
