/**
 * `persist load`: reads "persist JSON" (or NDJSON from `dump --ndjson`) from a stream
 * with stream-json — the input is never held whole — and writes it into the root
 * dict or the dict/list at --path.
 *
 * Transactions: top-level entries are applied in batches of `batch` (default 1000)
 * entries or about 8 MiB of input, whichever comes first; each batch is one
 * transaction. A failure rolls back the batch in progress only: earlier batches stay
 * committed, and the summary says how many entries were loaded. The store lock is
 * held only while a batch is applied, never while waiting for input. With `atomic`
 * the whole input is one transaction (all or nothing), and the lock is held from the
 * first entry to the end of the input.
 *
 * Semantics: a dict target gets each top-level key set (an existing key is
 * replaced; other keys are kept); a list target gets each item appended. A --path that
 * does not exist is created (as a dict or a list, after the input's first character)
 * in a dict that does.
 */
import { createInterface } from 'node:readline'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Objects } from '@persist/objects'
import { PersistError } from '@persist/pager'
import StreamJson from 'stream-json'
import StreamArray from 'stream-json/streamers/StreamArray.js'
import StreamObject from 'stream-json/streamers/StreamObject.js'
import { inTxn, RecordRef, resolvePath } from './access.js'
import { revive, TAG } from './codec.js'
import { formatPath, joinPath, type PathSegment, parsePath } from './path.js'
import type { Progress } from './progress.js'

export interface LoadOptions {
  segs: PathSegment[]
  ndjson: boolean
  batch: number
  /** One transaction for the whole input (the lock is held while reading it). */
  atomic?: boolean
  progress?: Progress
}

export interface LoadResult {
  entries: number
  transactions: number
  target: string
}

const BATCH_BYTES = 8 * 1024 * 1024

interface Entry {
  key: string | number
  value: unknown
}

/** Reads the first non-blank character of `input` and returns it with a stream that replays everything. */
async function peek(
  input: Readable,
  onBytes: (n: number) => void,
): Promise<{ first: string; stream: Readable }> {
  const it = input[Symbol.asyncIterator]()
  const held: Buffer[] = []
  let first = ''
  while (first === '') {
    const r = await it.next()
    if (r.done) break
    const chunk: Buffer = typeof r.value === 'string' ? Buffer.from(r.value) : r.value
    held.push(chunk)
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && !(c === 0xef || c === 0xbb || c === 0xbf)) {
        first = String.fromCharCode(c)
        break
      }
    }
  }
  async function* replay() {
    for (const c of held) {
      onBytes(c.length)
      yield c
    }
    for (;;) {
      const r = await it.next()
      if (r.done) return
      const chunk: Buffer = typeof r.value === 'string' ? Buffer.from(r.value) : r.value
      onBytes(chunk.length)
      yield chunk
    }
  }
  return { first, stream: Readable.from(replay(), { objectMode: false }) }
}

export async function load(o: Objects, input: Readable, opts: LoadOptions): Promise<LoadResult> {
  let bytes = 0
  const { first, stream } = await peek(input, (n) => {
    bytes += n
    opts.progress?.tick(bytes)
  })
  const targetPath = formatPath(opts.segs)
  if (first === '') throw new PersistError('PERSIST_INVALID', 'the input is empty: nothing to load')

  // Decide the target's kind from the input, creating it when missing.
  let wantKind: 'dict' | 'list'
  if (opts.ndjson) wantKind = 'dict'
  else if (first === '{') wantKind = 'dict'
  else if (first === '[') wantKind = 'list'
  else
    throw new PersistError(
      'PERSIST_INVALID',
      `the input must be a JSON object (loaded key by key) or array (items appended), not a value starting with ${JSON.stringify(first)}`,
    )
  const target = inTxn(o, () => ensureTarget(o, opts.segs, wantKind))
  if (opts.ndjson) wantKind = target.kind === 'list' ? 'list' : 'dict'
  if (target.kind !== wantKind)
    throw new PersistError(
      'PERSIST_INVALID',
      `${targetPath} is a ${target.kind}: load ${target.kind === 'list' ? 'a JSON array' : 'a JSON object'} into it (or choose another --path)`,
    )

  let entries = 0
  let transactions = 0
  let pending: Entry[] = []
  let pendingBytes = 0
  let lastBytes = 0

  const apply = () => {
    if (pending.length === 0) return
    const batch = pending
    pending = []
    pendingBytes = 0
    const run = opts.atomic ? (fn: () => void) => fn() : (fn: () => void) => inTxn(o, fn)
    run(() => {
      for (const e of batch) {
        const where = joinPath('$', e.key)
        const local = new Map<string, object>()
        const value = revive(e.value, where, {
          register: (p, c) => local.set(p, c),
          resolveRef: (p, w) => {
            const hit = local.get(p)
            if (hit !== undefined) return hit
            let rel: PathSegment[]
            try {
              rel = parsePath(p)
            } catch {
              throw new PersistError('PERSIST_INVALID', `input at ${w}: bad ref path ${JSON.stringify(p)}`)
            }
            try {
              return resolvePath(o, [...opts.segs, ...rel])
            } catch (err) {
              throw new PersistError(
                'PERSIST_INVALID',
                `input at ${w}: ref ${JSON.stringify(p)} names nothing loaded before it (${(err as Error).message})`,
              )
            }
          },
        })
        if (target.kind === 'list') o.listPush(target.off, value)
        else o.dictSet(target.off, String(e.key), value)
      }
    })
    if (!opts.atomic) transactions++
    entries += batch.length
  }

  const add = (e: Entry) => {
    pending.push(e)
    pendingBytes += bytes - lastBytes
    lastBytes = bytes
    if (pending.length >= opts.batch || pendingBytes >= BATCH_BYTES) apply()
  }

  if (opts.atomic) {
    o.begin()
    transactions = 1
  }
  try {
    if (opts.ndjson) {
      const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })
      let line = 0
      for await (const text of rl) {
        line++
        if (text.trim() === '') continue
        let rec: unknown
        try {
          rec = JSON.parse(text)
        } catch (e) {
          throw new PersistError('PERSIST_INVALID', `input line ${line}: not JSON (${(e as Error).message})`)
        }
        if (rec === null || typeof rec !== 'object' || !('key' in rec) || !('value' in rec))
          throw new PersistError('PERSIST_INVALID', `input line ${line}: expected {"key": …, "value": …}`)
        const { key, value } = rec as Entry
        if (target.kind === 'dict' && typeof key !== 'string')
          throw new PersistError(
            'PERSIST_INVALID',
            `input line ${line}: "key" must be a string to load into the dict ${targetPath}`,
          )
        add({ key: target.kind === 'list' ? (key as number) : key, value })
      }
    } else {
      const streamer = target.kind === 'list' ? StreamArray.streamArray() : StreamObject.streamObject()
      // An input object whose first key is "$persist" is one tagged value (a dump of a
      // class object, or of a dict that has a "$persist" key), not a dict to merge:
      // collect it whole (dumps write the tag first) and decide at the end.
      let tagged: Record<string, unknown> | undefined
      let first = true
      const sink = new Writable({
        objectMode: true,
        write(e: Entry, _enc, cb) {
          try {
            if (first && target.kind === 'dict' && e.key === TAG) tagged = {}
            first = false
            if (tagged) tagged[String(e.key)] = e.value
            else add(e)
            cb()
          } catch (err) {
            cb(err as Error)
          }
        },
      })
      await pipeline(stream, StreamJson.parser(), streamer as unknown as NodeJS.ReadWriteStream, sink)
      if (tagged) {
        const inner = tagged.value
        if (tagged[TAG] === 'dict' && inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
          // {"$persist":"dict","value":{…}}: its entries are the entries to load
          for (const k of Object.keys(inner)) add({ key: k, value: (inner as Record<string, unknown>)[k] })
        } else if (opts.segs.length > 0) {
          // any other tagged value replaces the value at --path
          apply()
          const parentSegs = opts.segs.slice(0, -1)
          const last = String(opts.segs[opts.segs.length - 1])
          const run = opts.atomic ? (fn: () => void) => fn() : (fn: () => void) => inTxn(o, fn)
          run(() => {
            const parent = resolvePath(o, parentSegs) as RecordRef
            const value = revive(tagged, '$', {
              register: () => {},
              resolveRef: (p, w) => {
                throw new PersistError(
                  'PERSIST_INVALID',
                  `input at ${w}: ref ${JSON.stringify(p)} outside a single tagged value`,
                )
              },
            })
            o.dictSet(parent.off, last, value)
          })
          if (!opts.atomic) transactions++
          entries++
        } else {
          throw new PersistError(
            'PERSIST_INVALID',
            `the input is a single ${JSON.stringify(tagged[TAG])} value, not a dict of entries: load it with --path NAME to store it under a key`,
          )
        }
      }
    }
    apply()
    if (opts.atomic) o.commit()
  } catch (e) {
    if (opts.atomic) {
      try {
        o.abort()
      } catch {}
      entries = 0
    }
    if (e instanceof PersistError) {
      e.message = `${e.message} — ${entries} entr${entries === 1 ? 'y was' : 'ies were'} loaded and committed before this`
      throw e
    }
    throw new PersistError(
      'PERSIST_INVALID',
      `the input is not valid JSON: ${(e as Error).message} — ${entries} entr${entries === 1 ? 'y was' : 'ies were'} loaded and committed before this`,
    )
  }
  return { entries, transactions, target: targetPath }
}

function ensureTarget(o: Objects, segs: PathSegment[], kind: 'dict' | 'list'): RecordRef {
  let v: unknown
  try {
    v = resolvePath(o, segs)
  } catch (e) {
    if (!(e instanceof PersistError) || e.code !== 'PERSIST_NOT_FOUND' || segs.length === 0) throw e
    const parent = resolvePath(o, segs.slice(0, -1))
    const last = segs[segs.length - 1]
    if (!(parent instanceof RecordRef) || parent.kind === 'list')
      throw new PersistError(
        'PERSIST_NOT_FOUND',
        `${formatPath(segs)} does not exist and can only be created in a dict (${formatPath(segs.slice(0, -1))} is a ${parent instanceof RecordRef ? parent.kind : typeof parent})`,
      )
    o.dictSet(parent.off, String(last), kind === 'list' ? [] : {})
    v = o.dictGet(parent.off, String(last))
  }
  if (!(v instanceof RecordRef))
    throw new PersistError(
      'PERSIST_INVALID',
      `${formatPath(segs)} holds a ${typeof v}, not a dict or list: cannot load into it`,
    )
  return v
}
