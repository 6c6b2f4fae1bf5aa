/**
 * `persist dump`: writes a value of the store as "persist JSON" (codec.ts) while
 * walking it — one entry at a time, straight into a bounded output buffer (out.ts).
 * Nothing proportional to the size of the store is held in memory except the paths
 * of shared records (rc_refs > 1), which later occurrences refer to.
 */
import type { Objects } from '@persist/objects'
import { dictEntriesOf, RecordRef, refCountOf } from './access.js'
import { scalarJSON, TAG } from './codec.js'
import type { Out } from './out.js'
import { joinPath } from './path.js'

export interface DumpOptions {
  /** 'json' (one document) or 'ndjson' (one {"key","value"} line per top-level entry). */
  format: 'json' | 'ndjson'
  /** Spaces of indentation for 'json' (0 = compact). */
  indent: number
  /** Called after each top-level entry with the number of entries done. */
  onEntry?: (done: number) => void
}

/** Number of top-level entries of v (for progress): dict size, list length, else 1. */
export function entryCount(o: Objects, v: unknown): number {
  if (!(v instanceof RecordRef)) return 1
  return v.kind === 'list' ? o.listLength(v.off) : o.dictSize(v.off)
}

export class Dumper {
  /** First path of every shared record met so far (record offset → ref path). */
  private readonly seen = new Map<number, string>()
  private readonly nl: string

  constructor(
    private readonly o: Objects,
    private readonly out: Out,
    private readonly opts: DumpOptions,
  ) {
    this.nl = opts.indent > 0 && opts.format === 'json' ? '\n' : ''
  }

  /** Writes v (the value at the dumped PATH, called `$` in refs). */
  dump(v: unknown): void {
    if (this.opts.format === 'ndjson') this.ndjson(v)
    else {
      this.value(v, '$', 0, true)
      this.out.write('\n')
    }
    this.out.flush()
  }

  /** Writes one value (no newline, no flush): used for fingerprints and fragments. */
  write(v: unknown): void {
    this.value(v, '$', 0, false)
  }

  private ndjson(v: unknown): void {
    if (!(v instanceof RecordRef)) {
      this.out.write(`{"key":null,"value":${scalarJSON(v)}}\n`)
      return
    }
    this.remember(v, '$')
    let done = 0
    const o = this.o
    if (v.kind === 'list') {
      const n = o.listLength(v.off)
      for (let i = 0; i < n; i++) {
        this.out.write(`{"key":${i},"value":`)
        this.value(o.listGet(v.off, i), joinPath('$', i), 0, false)
        this.out.write('}\n')
        this.opts.onEntry?.(++done)
      }
      return
    }
    for (const [k, x] of dictEntriesOf(o, v.off)) {
      this.out.write(`{"key":${JSON.stringify(k)},"value":`)
      this.value(x, joinPath('$', k), 0, false)
      this.out.write('}\n')
      this.opts.onEntry?.(++done)
    }
  }

  /** Records the first path of a shared record; returns the earlier path if it was seen. */
  private remember(r: RecordRef, path: string): string | undefined {
    const prev = this.seen.get(r.off)
    if (prev !== undefined) return prev
    if (refCountOf(this.o, r.off) > 1) this.seen.set(r.off, path)
    return undefined
  }

  private pad(depth: number): string {
    return this.nl === '' ? '' : `\n${' '.repeat(this.opts.indent * depth)}`
  }

  private value(v: unknown, path: string, depth: number, top: boolean): void {
    const out = this.out
    if (!(v instanceof RecordRef)) {
      out.write(scalarJSON(v))
      return
    }
    const prev = this.remember(v, path)
    if (prev !== undefined) {
      out.write(`{"${TAG}":"ref","path":${JSON.stringify(prev)}}`)
      return
    }
    const o = this.o
    const colon = this.nl ? ': ' : ':'
    if (v.kind === 'list') {
      const n = o.listLength(v.off)
      if (n === 0) {
        out.write('[]')
        if (top) this.opts.onEntry?.(0)
        return
      }
      out.write('[')
      for (let i = 0; i < n; i++) {
        if (i > 0) out.write(',')
        out.write(this.pad(depth + 1))
        this.value(o.listGet(v.off, i), joinPath(path, i), depth + 1, false)
        if (top) this.opts.onEntry?.(i + 1)
      }
      out.write(`${this.pad(depth)}]`)
      return
    }
    // dict or class object
    const d = depth
    let close = ''
    if (v.kind === 'object') {
      const cls = o.className(v.off) ?? ''
      out.write(`{"${TAG}":"object","class":${JSON.stringify(cls)},"value"${colon}`)
      close = '}'
    } else if (o.dictHas(v.off, TAG)) {
      out.write(`{"${TAG}":"dict","value"${colon}`)
      close = '}'
    }
    let first = true
    let done = 0
    for (const [k, x] of dictEntriesOf(o, v.off)) {
      out.write(first ? '{' : ',')
      first = false
      out.write(this.pad(d + 1))
      out.write(JSON.stringify(k))
      out.write(colon)
      this.value(x, joinPath(path, k), d + 1, false)
      if (top) this.opts.onEntry?.(++done)
    }
    out.write(first ? '{}' : `${this.pad(d)}}`)
    out.write(close)
  }
}
