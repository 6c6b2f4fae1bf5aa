#!/usr/bin/env node
// Bad files: the store file is untrusted input. Feeds damaged and crafted files to
// open() + toJS(root) + check() + a small write, in a child process, and classifies
// what happens.
//
//   node packages/persist/scripts/bad-files.mjs [--quick] [--samples 300] [--seed S]
//        [--timeout-ms 15000] [--keep DIR]
//
// Cases: random bytes (with and without a valid magic/header), a zero-length file, a
// directory, a newer format version, wrong page sizes, a wrong endian mark, truncation
// at every 4 KiB boundary and at every header field offset, single-byte flips (xor 0xff
// and xor 0x01) at every byte of the header (pst_header, 392 bytes) and the heap meta
// block, flips at sampled offsets in the other pages, and crafted files whose offsets
// point outside the mapping, into the header, at unaligned or non-record places, or in
// cycles (root record, dict entry/index blocks, list items, string blocks and lengths,
// heap meta, slab and large-block headers, the journal: entries and chunk chains), and
// objects of unregistered classes whose names look like module paths.
//
// Allowed outcomes: a PersistError (any code) from open/read/write, problems reported
// by check(), or a clean read. Failures: a signal (SIGSEGV, SIGBUS, SIGABRT, …), a
// hang (no answer within --timeout-ms), a non-PersistError exception (TypeError,
// RangeError, …: the file was trusted somewhere), or code loaded because of a class
// name. Cases run one after another in a runner child; when the runner dies the case
// is rerun alone in a fresh runner to confirm it. Prints a table of outcomes per case
// group and exits 1 on any failure.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { JsonChild, parseArgs, rmDir, rng, serveJsonLines, table, tempDir } from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)
const PAGE = 4096
const MARKER_DIR_ENV = 'REL_BADFILES_MARKER'

// pst_header field offsets (persist_format.h, FORMAT.md)
const H = {
  magic: 0,
  format: 8,
  endian: 12,
  page_size: 16,
  flags: 20,
  page_count: 24,
  txid: 32,
  free_pages: 40,
  free_hint: 48,
  jr_first: 56,
  jr_entries: 64,
  created_ms: 72,
  reserved1: 80,
  slots: 128,
  reserved2: 192,
  lock: 256,
  lk_owner_pid: 264,
  lk_mutex: 272,
  lk_commit_seq: 336,
  lk_watchers: 340,
  lk_reserved: 344,
}
const HEADER_SIZE = 392
const HEAP_META_SIZE = 432

// ---- runner: open one file and classify ---------------------------------------

async function runner() {
  const { open, toJS, PersistError } = await import('@persist/persist')
  // a class registered here, so objects of it read back; others must be "unknown"
  const { PBase, register } = await import('../../pbase/dist/index.js')
  class Known extends PBase {
    v = 0
  }
  register(Known, 'rel.Known')
  const isPE = (e) => e instanceof PersistError
  const desc = (e) =>
    isPE(e) ? `PersistError ${e.code}` : `${e?.name ?? typeof e}: ${String(e?.message ?? e).slice(0, 200)}`
  await serveJsonLines(({ path, opts }) => {
    const steps = []
    let bad // first non-PersistError
    let store
    try {
      // unknown classes read as dicts so the walk reaches everything; the
      // 'class names' cases pass unknownClasses: 'error' explicitly
      store = open(path, { create: false, lockTimeoutMs: 3000, unknownClasses: 'dict', ...(opts ?? {}) })
      steps.push('open ok')
    } catch (e) {
      if (!isPE(e)) bad ??= `open: ${desc(e)}`
      return { outcome: isPE(e) ? `open: ${e.code}` : 'open: untyped error', bad }
    }
    let outcome = 'clean'
    try {
      toJS(store.root)
    } catch (e) {
      outcome = isPE(e) ? `read: ${e.code}` : 'read: untyped error'
      if (!isPE(e)) bad ??= `toJS: ${desc(e)}`
    }
    // the proxy path too: read every value through the proxies (wraps records, looks
    // up class names), at most 3000 values
    try {
      let budget = 3000
      const visit = (v, depth) => {
        if (budget-- <= 0 || depth > 20 || v === null || typeof v !== 'object') return
        if (ArrayBuffer.isView(v) || v instanceof Date) return
        if (Array.isArray(v)) for (let i = 0; i < v.length && budget > 0; i++) visit(v[i], depth + 1)
        else for (const k of Object.keys(v)) visit(v[k], depth + 1)
      }
      visit(store.root, 0)
    } catch (e) {
      if (outcome === 'clean') outcome = isPE(e) ? `proxy read: ${e.code}` : 'proxy read: untyped error'
      if (!isPE(e)) bad ??= `proxy read: ${desc(e)}`
    }
    try {
      const p = store.check()
      if (p.length && outcome === 'clean') outcome = 'check problems'
    } catch (e) {
      if (outcome === 'clean') outcome = isPE(e) ? `check: ${e.code}` : 'check: untyped error'
      if (!isPE(e)) bad ??= `check: ${desc(e)}`
    }
    try {
      store.transaction(() => {
        store.root.__probe = ['probe', { x: 1 }]
        delete store.root.__probe
      })
    } catch (e) {
      if (!isPE(e)) bad ??= `write: ${desc(e)}`
    }
    try {
      store.close()
    } catch (e) {
      if (!isPE(e)) bad ??= `close: ${desc(e)}`
    }
    return { outcome, bad }
  })
}

// ---- the sample store ------------------------------------------------------------

async function makeSample(file) {
  const { open } = await import('@persist/persist')
  const { PBase, register } = await import('../../pbase/dist/index.js')
  class Known extends PBase {
    v = 0
  }
  register(Known, 'rel.Known')
  // classes whose names look like code to load: reading them must never import anything
  const markerDir = process.env[MARKER_DIR_ENV]
  class Evil1 extends PBase {
    x = 1
  }
  class Evil2 extends PBase {
    x = 2
  }
  class Evil3 extends PBase {
    x = 3
  }
  register(Evil1, `${markerDir}/evil.mjs`)
  register(Evil2, 'node:child_process')
  register(Evil3, '__proto__')
  const s = open(file)
  const r = s.root
  s.transaction(() => {
    r.a = [1, 2.5, 'three', null, true, [4, [5]], { six: 6 }]
    r.b = { x: 1, y: 'why', z: { deep: [1, 2, 3] }, big: 2n ** 100n, when: new Date(0) }
    r.s = 'a long latin1 string '.repeat(200)
    r.u = 'UTF-16 ☃ string '.repeat(100)
    r.bytes = new Uint8Array(3000).fill(7)
    r.known = new Known()
    r.evil1 = new Evil1()
    r.evil2 = new Evil2()
    r.evil3 = new Evil3()
    r.list = Array.from({ length: 120 }, (_, i) => ({ i, name: `item${i}` }))
    r.big = 'L'.repeat(20_000)
    r.shared = r.a
  })
  s.transaction(() => {
    r.tmp = Array.from({ length: 100 }, (_, i) => `t${i}`.repeat(30))
    delete r.tmp // leaves free space in slabs
  })
  s.close()
}

// ---- case generation -------------------------------------------------------------

function u64(buf, off) {
  return Number(buf.readBigUInt64LE(off))
}
function setU64(buf, off, v) {
  buf.writeBigUInt64LE(BigInt(v), off)
}

/** Locates structures of the sample store (see persist_format.h and objects/format.ts). */
function layout(buf) {
  const heapMetaPage = u64(buf, H.slots)
  const heapMeta = heapMetaPage * PAGE
  const objMeta = u64(buf, heapMeta + 16) // hp_roots[0]: objects meta block (byte offset)
  const rootRec = u64(buf, objMeta + 16) // OM_ROOT
  const entries = u64(buf, rootRec + 32) // DC_ENTRIES
  const index = u64(buf, rootRec + 40) // DC_INDEX
  const cap = buf.readUInt32LE(rootRec + 24)
  // entry i: key slot at entries + 32 i, value slot at + 16
  const entry = (name) => {
    for (let i = 0; i < cap; i++) {
      const e = entries + 32 * i
      const tag = buf[e]
      if (tag === 8) {
        // short latin1 key: u8 length at +1, bytes at +2
        const len = buf[e + 1]
        if (buf.toString('latin1', e + 2, e + 2 + len) === name) return e
      }
    }
    throw new Error(`entry ${name} not found in the sample store`)
  }
  return { heapMetaPage, heapMeta, objMeta, rootRec, entries, index, cap, entry }
}

function* cases(sample, o) {
  const size = sample.length
  const pages = size / PAGE
  const r = rng(o.seed)
  const L = layout(sample)
  const edit = (fn) => {
    const b = Buffer.from(sample)
    fn(b)
    return b
  }
  const randomBytes = (n) => {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = r.int(256)
    return b
  }

  // special files
  yield { group: 'special', name: 'zero-length file', bytes: Buffer.alloc(0) }
  yield { group: 'special', name: 'a directory', dir: true }
  yield { group: 'special', name: 'newer format version', bytes: edit((b) => b.writeUInt32LE(2, H.format)) }
  yield {
    group: 'special',
    name: 'format version 0xffffffff',
    bytes: edit((b) => b.writeUInt32LE(0xffffffff, H.format)),
  }
  for (const ps of [0, 512, 8192, 65536, 0xffffffff])
    yield { group: 'special', name: `page size ${ps}`, bytes: edit((b) => b.writeUInt32LE(ps, H.page_size)) }
  yield {
    group: 'special',
    name: 'big-endian mark',
    bytes: edit((b) => b.writeUInt32BE(0x0a0b0c0d, H.endian)),
  }
  yield { group: 'special', name: 'lock format 99', bytes: edit((b) => b.writeUInt32LE(99, H.lock)) }
  yield { group: 'special', name: 'a text file', bytes: Buffer.from('hello, I am not a store\n'.repeat(300)) }
  yield { group: 'special', name: 'magic only', bytes: Buffer.from(sample.subarray(0, 8)) }
  yield { group: 'special', name: 'header page only', bytes: Buffer.from(sample.subarray(0, PAGE)) }

  // random bytes
  for (const n of [1, 7, 8, 100, 391, 392, 4095, 4096, 8192, 65536, 1 << 20])
    yield { group: 'random bytes', name: `${n} random bytes`, bytes: randomBytes(n) }
  for (let i = 0; i < (o.quick ? 4 : 16); i++) {
    // a valid header page followed by random pages
    const b = Buffer.concat([sample.subarray(0, PAGE), randomBytes(size - PAGE)])
    yield { group: 'random bytes', name: `valid header + random pages #${i}`, bytes: b }
    // valid magic, random rest of the header
    const c = Buffer.from(sample)
    randomBytes(HEADER_SIZE - 8).copy(c, 8)
    yield { group: 'random bytes', name: `valid magic + random header #${i}`, bytes: c }
  }

  // truncation at every 4 KiB boundary, and at every header field offset (+1 byte each)
  for (let p = 0; p < pages; p++)
    yield {
      group: 'truncate 4 KiB',
      name: `truncate to ${p} pages`,
      bytes: Buffer.from(sample.subarray(0, p * PAGE)),
    }
  for (const [f, off] of Object.entries(H)) {
    yield {
      group: 'truncate field',
      name: `truncate at ${f} (${off})`,
      bytes: Buffer.from(sample.subarray(0, off)),
    }
    yield {
      group: 'truncate field',
      name: `truncate at ${f}+1 (${off + 1})`,
      bytes: Buffer.from(sample.subarray(0, off + 1)),
    }
  }
  yield {
    group: 'truncate field',
    name: 'truncate mid heap meta page',
    bytes: Buffer.from(sample.subarray(0, L.heapMeta + 100)),
  }
  yield {
    group: 'truncate field',
    name: 'truncate 1 byte short',
    bytes: Buffer.from(sample.subarray(0, size - 1)),
  }

  // single byte flips: every header byte, every heap meta byte, sampled elsewhere
  for (let off = 0; off < HEADER_SIZE; off++) {
    yield { group: 'flip header', name: `header byte ${off} ^ 0xff`, bytes: edit((b) => (b[off] ^= 0xff)) }
    yield { group: 'flip header', name: `header byte ${off} ^ 0x01`, bytes: edit((b) => (b[off] ^= 0x01)) }
  }
  for (let off = 0; off < HEAP_META_SIZE; off++)
    yield {
      group: 'flip heap meta',
      name: `heap meta byte ${off} ^ 0xff`,
      bytes: edit((b) => (b[L.heapMeta + off] ^= 0xff)),
    }
  for (let i = 0; i < o.samples; i++) {
    const page = 1 + r.int(pages - 1)
    const off = page * PAGE + r.int(PAGE)
    const x = 1 + r.int(255)
    yield {
      group: 'flip sampled page',
      name: `byte ${off} (page ${page}) ^ ${x}`,
      bytes: edit((b) => (b[off] ^= x)),
    }
  }
  // a few multi-byte smashes of whole record areas
  for (let i = 0; i < (o.quick ? 10 : 40); i++) {
    const page = 1 + r.int(pages - 1)
    const off = page * PAGE + 16 * r.int(PAGE / 16)
    const junk = randomBytes(16 + r.int(64))
    yield {
      group: 'smash sampled page',
      name: `${junk.length} random bytes at ${off}`,
      bytes: edit((b) => junk.copy(b, off)),
    }
  }

  // crafted offsets
  const far = [size, size + PAGE, 2 ** 32, 2 ** 40, 2 ** 53 - 16, 0, 8, 256, 1, PAGE - 8]
  const c = (name, fn) => ({ group: 'crafted', name, bytes: edit(fn) })
  for (const v of far) {
    yield c(`root record -> ${v}`, (b) => setU64(b, L.objMeta + 16, v))
    yield c(`objects meta (heap root 0) -> ${v}`, (b) => setU64(b, L.heapMeta + 16, v))
    yield c(`heap meta page (hd_slots[0]) -> ${v}`, (b) => setU64(b, H.slots, v))
    yield c(`root dict entries block -> ${v}`, (b) => setU64(b, L.rootRec + 32, v))
    yield c(`root dict index block -> ${v}`, (b) => setU64(b, L.rootRec + 40, v))
    yield c(`root.a (list ref) -> ${v}`, (b) => setU64(b, L.entry('a') + 16 + 8, v))
    yield c(`root.s (string block) -> ${v}`, (b) => setU64(b, L.entry('s') + 16 + 8, v))
    yield c(`root.bytes (bytes block) -> ${v}`, (b) => setU64(b, L.entry('bytes') + 16 + 8, v))
    yield c(`hp_partial[3] -> ${v}`, (b) => setU64(b, L.heapMeta + 80 + 8 * 3, v))
    yield c(`journal first chunk -> ${v}`, (b) => setU64(b, H.jr_first, v))
  }
  yield c('root record -> itself + 8 (unaligned)', (b) => setU64(b, L.objMeta + 16, L.rootRec + 8))
  yield c('root record -> objects meta', (b) => setU64(b, L.objMeta + 16, L.objMeta))
  yield c('root.a -> the root dict (a cycle through the root)', (b) =>
    setU64(b, L.entry('a') + 16 + 8, L.rootRec),
  )
  yield c('root.b -> root.a record typed as dict', (b) => {
    setU64(b, L.entry('b') + 16 + 8, u64(b, L.entry('a') + 16 + 8))
  })
  yield c('root.a list items -> the list record itself', (b) => {
    const list = u64(b, L.entry('a') + 16 + 8)
    setU64(b, list + 24, list)
  })
  yield c('root.a list length 2^32-1', (b) => b.writeUInt32LE(0xffffffff, u64(b, L.entry('a') + 16 + 8) + 16))
  yield c('root.a list length > capacity', (b) => {
    const list = u64(b, L.entry('a') + 16 + 8)
    b.writeUInt32LE(b.readUInt32LE(list + 20) + 5, list + 16)
  })
  yield c('root.list item 0 -> root.list (cycle)', (b) => {
    const list = u64(b, L.entry('list') + 16 + 8)
    const items = u64(b, list + 24)
    setU64(b, items + 8, list)
    b[items + 1] = 2 // record type: list
  })
  yield c('root dict capacity 2^31', (b) => b.writeUInt32LE(2 ** 31, L.rootRec + 24))
  yield c('root dict count > used', (b) => b.writeUInt32LE(100000, L.rootRec + 16))
  yield c('root dict used > capacity', (b) =>
    b.writeUInt32LE(b.readUInt32LE(L.rootRec + 24) + 10, L.rootRec + 20),
  )
  yield c('root dict index buckets 2^32-1', (b) => b.writeUInt32LE(0xffffffff, L.rootRec + 28))
  yield c('root dict index all -> entry 2^31', (b) => {
    const n = b.readUInt32LE(L.rootRec + 28)
    for (let i = 0; i < n; i++)
      if (b.readUInt32LE(L.index + 8 * i) !== 0) b.writeUInt32LE(2 ** 31, L.index + 8 * i)
  })
  yield c('root.s string length 2^32-1', (b) => b.writeUInt32LE(0xffffffff, L.entry('s') + 16 + 4))
  yield c('root.big string length 2^31', (b) => b.writeUInt32LE(2 ** 31, L.entry('big') + 16 + 4))
  yield c('root.s encoding 7', (b) => (b[L.entry('s') + 16 + 1] = 7))
  yield c('root.bytes subtype 250', (b) => (b[L.entry('bytes') + 16 + 1] = 250))
  yield c('root.bytes length 2^32-1', (b) => b.writeUInt32LE(0xffffffff, L.entry('bytes') + 16 + 4))
  yield c('root.b.big bigint length huge', (b) => {
    // find the bigint slot by scanning the dict entries of root.b
    const d = u64(b, L.entry('b') + 16 + 8)
    const ents = u64(b, d + 32)
    for (let i = 0; i < b.readUInt32LE(d + 20); i++)
      if (b[ents + 32 * i + 16] === 12) b.writeUInt32LE(0xfffffff0, ents + 32 * i + 16 + 4)
  })
  yield c('value tag 200 in root.a', (b) => (b[L.entry('a') + 16] = 200))
  yield c('key tag 11 (bytes) in root entry 0', (b) => (b[L.entries] = 11))
  yield c('short string length 255', (b) => (b[L.entries + 1] = 255))
  yield c('record type 9 at root', (b) => (b[L.rootRec] = 9))
  yield c('record generation 0 at root', (b) => b.writeUInt32LE(0, L.rootRec + 4))
  yield c('root refcount 0', (b) => b.writeUInt32LE(0, L.rootRec + 8))
  yield c('root.evil1 class name slot -> outside', (b) => {
    const obj = u64(b, L.entry('evil1') + 16 + 8)
    b[obj + 48] = 10 // T_STR
    b.writeUInt32LE(64, obj + 48 + 4)
    setU64(b, obj + 48 + 8, 2 ** 40)
  })
  yield c('heap meta magic wrong', (b) => (b[L.heapMeta] ^= 0xff))
  yield c('heap class count 0', (b) => b.writeUInt32LE(0, L.heapMeta + 12))
  yield c('heap class count 2^32-1', (b) => b.writeUInt32LE(0xffffffff, L.heapMeta + 12))
  yield c('hd_page_count 2^40', (b) => setU64(b, H.page_count, 2 ** 40))
  yield c('hd_page_count 0', (b) => setU64(b, H.page_count, 0))
  yield c('hd_page_count = file pages + 1', (b) => setU64(b, H.page_count, pages + 1))
  yield c('hd_free_pages 2^60', (b) => setU64(b, H.free_pages, 2 ** 60))
  yield c('hd_free_hint 2^50', (b) => setU64(b, H.free_hint, 2 ** 50))
  yield c('lock owner pid 1 and mutex bytes 0xff', (b) => {
    setU64(b, H.lk_owner_pid, 1)
    b.fill(0xff, H.lk_mutex, H.lk_mutex + 40)
  })
  yield c('lock watchers 2^32-1', (b) => b.writeUInt32LE(0xffffffff, H.lk_watchers))
  // slab and large headers: find them by magic
  const slabs = []
  const larges = []
  for (let p = 1; p < pages; p++) {
    if (sample.readUInt32LE(p * PAGE) === 0x42414c53) slabs.push(p * PAGE)
    if (sample.readUInt32LE(p * PAGE) === 0x4752414c) larges.push(p * PAGE)
  }
  for (const s of slabs.slice(0, o.quick ? 2 : 6)) {
    yield c(`slab @${s}: block size 0`, (b) => b.writeUInt32LE(0, s + 8))
    yield c(`slab @${s}: block size 2^31`, (b) => b.writeUInt32LE(2 ** 31, s + 8))
    yield c(`slab @${s}: pages 65535`, (b) => b.writeUInt16LE(65535, s + 6))
    yield c(`slab @${s}: capacity 65535`, (b) => b.writeUInt16LE(65535, s + 12))
    yield c(`slab @${s}: class 999`, (b) => b.writeUInt16LE(999, s + 4))
    yield c(`slab @${s}: next -> itself`, (b) => setU64(b, s + 16, s / PAGE))
    yield c(`slab @${s}: next -> 2^40`, (b) => setU64(b, s + 16, 2 ** 40))
    yield c(`slab @${s}: bitmap all ones`, (b) => b.fill(0xff, s + 32, s + 96))
    yield c(`slab @${s}: bitmap all zeros`, (b) => b.fill(0, s + 32, s + 96))
  }
  for (const g of larges.slice(0, 4)) {
    yield c(`large @${g}: pages 2^40`, (b) => setU64(b, g + 8, 2 ** 40))
    yield c(`large @${g}: pages 0`, (b) => setU64(b, g + 8, 0))
    yield c(`large @${g}: size 2^50`, (b) => setU64(b, g + 16, 2 ** 50))
  }
  // the journal: entries to roll back at open (the first locker applies them!)
  const jr = u64(sample, H.jr_first) * PAGE
  const entry = (b, i, off, len, seq) => {
    const e = jr + 32 + i * 16 // entries follow the 32-byte chunk header (data padded to 8 follows each)
    setU64(b, e, off)
    b.writeUInt32LE(len, e + 8)
    b.writeUInt32LE(seq, e + 12)
  }
  const jcases = [
    ['je_off beyond the file', (b) => entry(b, 0, size + PAGE, 8, 1)],
    ['je_off 2^60', (b) => entry(b, 0, 2 ** 60, 8, 1)],
    ['je_off inside the header (magic)', (b) => entry(b, 0, 0, 8, 1)],
    ['je_off inside the lock area', (b) => entry(b, 0, H.lk_mutex, 40, 1)],
    ['je_len 2^32-1', (b) => entry(b, 0, PAGE * 40, 0xffffffff, 1)],
    ['je_len 0', (b) => entry(b, 0, PAGE * 40, 0, 1)],
    ['je_off + je_len wraps', (b) => entry(b, 0, 2 ** 53 - 8, 64, 1)],
    ['je_seq wrong', (b) => entry(b, 0, PAGE * 40, 8, 77)],
    ['entry range crosses the file end', (b) => entry(b, 0, size - 4, 16, 1)],
  ]
  for (const [name, fn] of jcases)
    for (const n of [1, 2, 1000000]) {
      yield c(`journal: ${name}, hd_jr_entries ${n}`, (b) => {
        fn(b)
        setU64(b, H.jr_entries, n)
      })
    }
  yield c('journal chunk magic wrong, entries 1', (b) => {
    b[jr] ^= 0xff
    setU64(b, H.jr_entries, 1)
  })
  yield c('journal chunk next -> itself (cycle), entries 2^40', (b) => {
    setU64(b, jr + 8, jr / PAGE)
    setU64(b, H.jr_entries, 2 ** 40)
  })
  yield c('journal chunk next -> header page, entries 5000', (b) => {
    setU64(b, jr + 8, 0)
    setU64(b, jr + 16, 1)
    setU64(b, H.jr_entries, 5000)
  })
  yield c('journal chunk pages 2^40, entries 1', (b) => {
    setU64(b, jr + 16, 2 ** 40)
    setU64(b, H.jr_entries, 1)
  })

  // unregistered classes named like modules: reading must not load anything
  yield {
    group: 'class names',
    name: "objects of unregistered classes (unknownClasses: 'error')",
    bytes: Buffer.from(sample),
    opts: { unknownClasses: 'error' },
  }
  yield {
    group: 'class names',
    name: "objects of unregistered classes (unknownClasses: 'dict')",
    bytes: Buffer.from(sample),
    opts: { unknownClasses: 'dict' },
  }
}

// ---- parent --------------------------------------------------------------------

async function parent(argv) {
  const o = parseArgs(argv, { quick: false, samples: 300, seed: 12345, 'timeout-ms': 15_000, keep: '' })
  if (o.quick) o.samples = Math.min(o.samples, 100)
  const dir = tempDir('persist-badfiles-')
  const markerDir = join(dir, 'markers')
  mkdirSync(markerDir)
  const sampleFile = join(dir, 'sample.persist')
  // the evil class module: if anything ever imported it, it would leave a marker file
  writeFileSync(
    join(markerDir, 'evil.mjs'),
    `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(join(markerDir, 'LOADED'))}, 'x')\n`,
  )
  const env = { [MARKER_DIR_ENV]: markerDir }
  const mk = new JsonChild(SELF, ['--make-sample', sampleFile], env)
  const made = await mk.request({})
  if (!made.ok) throw new Error(`could not build the sample store: ${JSON.stringify(made)}`)
  mk.close()
  const sample = readFileSync(sampleFile)
  const t0 = Date.now()
  let run = new JsonChild(SELF, ['--runner'], env)
  const groups = new Map()
  const failures = []
  let n = 0
  const caseFile = join(dir, 'case.persist')
  const caseDir = join(dir, 'case-dir')
  const exec = async (cs, runner) => {
    let path = caseFile
    if (cs.dir) {
      mkdirSync(caseDir, { recursive: true })
      path = caseDir
    } else writeFileSync(caseFile, cs.bytes, { mode: 0o600 })
    const res = await runner.request({ path, opts: cs.opts }, o['timeout-ms'])
    if (cs.dir) rmSync(caseDir, { recursive: true, force: true })
    return res
  }
  for (const cs of cases(sample, o)) {
    n++
    let res = await exec(cs, run)
    if (res.died) {
      // confirm in a fresh runner, alone
      const solo = new JsonChild(SELF, ['--runner'], env)
      const again = await exec(cs, solo)
      solo.close()
      if (!again.died)
        res = {
          outcome: `runner died once (${res.signal ?? (res.hang ? 'hang' : res.code)}), not alone`,
          bad: `runner died once (${res.signal ?? (res.hang ? 'hang' : res.code)}), not alone: ${String(res.stderr ?? '').slice(-1500)}`,
          flaky: true,
        }
      else res = again
      run = new JsonChild(SELF, ['--runner'], env)
    }
    let outcome
    if (res.died) {
      outcome = res.hang ? 'HANG' : `SIGNAL/EXIT ${res.signal ?? res.code}`
      failures.push({ cs, detail: `${outcome}: ${String(res.stderr ?? '').slice(-1500)}` })
      if (o.keep) writeFileSync(join(o.keep, `case-${n}.persist`), cs.bytes ?? '')
    } else {
      outcome = res.outcome
      if (res.bad || res.flaky) {
        failures.push({ cs, detail: res.bad ?? res.outcome })
        outcome = `${outcome} [UNTYPED]`
      }
    }
    if (existsSync(join(markerDir, 'LOADED'))) {
      failures.push({ cs, detail: 'a class name caused code to be loaded (marker file written)' })
      rmSync(join(markerDir, 'LOADED'))
    }
    const g = groups.get(cs.group) ?? new Map()
    groups.set(cs.group, g)
    g.set(outcome, (g.get(outcome) ?? 0) + 1)
  }
  run.close()
  const rows = [['group', 'cases', 'outcomes']]
  for (const [gname, g] of groups) {
    const total = [...g.values()].reduce((a, b) => a + b, 0)
    rows.push([
      gname,
      total,
      [...g.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ×${v}`)
        .join(', '),
    ])
  }
  console.log(table(rows))
  const signals = failures.filter((f) => /^(SIGNAL|HANG)/.test(f.detail)).length
  const loaded = failures.filter((f) => /caused code to be loaded/.test(f.detail)).length
  for (const f of failures.slice(0, 30))
    console.log(`FAIL [${f.cs.group}] ${f.cs.name}: ${f.detail.split('\n').slice(0, 6).join(' | ')}`)
  console.log(
    `bad-files: ${n} cases, ${failures.length} failures (${signals} signals/hangs, ${loaded} code loads, ${failures.length - signals - loaded} untyped errors) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  )
  if (o.keep) mkdirSync(o.keep, { recursive: true })
  rmDir(dir)
  process.exitCode = failures.length ? 1 : 0
}

const role = process.argv[2]
if (role === '--runner') await runner()
else if (role === '--make-sample')
  await serveJsonLines(async () => {
    await makeSample(process.argv[3])
    return { ok: true }
  })
else await parent(process.argv.slice(2))
