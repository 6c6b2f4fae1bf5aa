/**
 * `persist watch`: prints one line per change of the sub-tree at PATH, as commits
 * land, until interrupted.
 *
 * How: every `interval` ms it reads hd_txid (FORMAT.md: header offset 32, an aligned
 * 8-byte load, no lock). When it moved, it takes the lock briefly and fingerprints
 * the watched value: for a dict or list, one SHA-1 per child (of the child's
 * "persist JSON"); otherwise of the value itself. Children whose fingerprint
 * changed are printed as `set PATH.key <json>`, vanished ones as `delete PATH.key`.
 * Several commits between two polls are reported together under the newest txid.
 * Cost per commit: a walk of the watched sub-tree — watch small sub-trees of large
 * stores, not the root of a huge one.
 */
import { createHash } from 'node:crypto'
import type { Objects } from '@persist/objects'
import { PersistError } from '@persist/pager'
import { dictKeysOf, inTxn, RecordRef, resolvePath } from './access.js'
import { Dumper } from './dump.js'
import { Out } from './out.js'
import { formatPath, joinPath, type PathSegment } from './path.js'

const SHOW_MAX = 300 // characters of a value printed on a change line

type Shape =
  | { kind: 'missing' }
  | { kind: 'scalar' | 'record'; hash: string; json: string }
  | { kind: 'container'; children: Map<string, string>; ckind: 'dict' | 'list' }

function jsonOf(o: Objects, v: unknown, limit: number): { hash: string; json: string } {
  const h = createHash('sha1')
  let shown = ''
  const out = new Out((chunk) => {
    h.update(chunk)
    if (shown.length < limit) shown += chunk.slice(0, limit - shown.length + 1)
  })
  new Dumper(o, out, { format: 'ndjson', indent: 0 }).write(v)
  out.flush()
  const json = shown.length > limit ? `${shown.slice(0, limit)}…` : shown
  return { hash: h.digest('base64'), json }
}

export function txidOf(o: Objects): number {
  return (o as unknown as { pager: { mem: { u64(off: number): number } } }).pager.mem.u64(32)
}

export class Watcher {
  private shape: Shape = { kind: 'missing' }
  private last = -1
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly o: Objects,
    private readonly segs: PathSegment[],
    private readonly print: (line: string) => void,
  ) {}

  private read(): Shape {
    return inTxn(this.o, () => {
      let v: unknown
      try {
        v = resolvePath(this.o, this.segs)
      } catch (e) {
        if (e instanceof PersistError && e.code === 'PERSIST_NOT_FOUND') return { kind: 'missing' } as Shape
        throw e
      }
      if (!(v instanceof RecordRef) || v.kind === 'object') {
        return { kind: v instanceof RecordRef ? 'record' : 'scalar', ...jsonOf(this.o, v, SHOW_MAX) } as Shape
      }
      const children = new Map<string, string>()
      if (v.kind === 'list') {
        const n = this.o.listLength(v.off)
        for (let i = 0; i < n; i++) children.set(String(i), jsonOf(this.o, this.o.listGet(v.off, i), 0).hash)
      } else {
        for (const k of dictKeysOf(this.o, v.off))
          children.set(k, jsonOf(this.o, this.o.dictGet(v.off, k), 0).hash)
      }
      return { kind: 'container', ckind: v.kind, children } as Shape
    })
  }

  private showChild(key: string, kind: 'dict' | 'list'): string {
    const seg: PathSegment = kind === 'list' ? Number(key) : key
    return inTxn(this.o, () => {
      try {
        return jsonOf(this.o, resolvePath(this.o, [...this.segs, seg]), SHOW_MAX).json
      } catch {
        return '(gone)'
      }
    })
  }

  /** Reads the starting state and prints it as one `watching` line. */
  start(intervalMs: number): void {
    this.last = txidOf(this.o)
    this.shape = this.read()
    const where = formatPath(this.segs)
    const what =
      this.shape.kind === 'missing'
        ? 'does not exist yet'
        : this.shape.kind === 'container'
          ? `is a ${this.shape.ckind} of ${this.shape.children.size}`
          : `= ${this.shape.json}`
    this.print(`watching ${where} (txid ${this.last}): ${what}`)
    this.timer = setInterval(() => this.poll(), intervalMs)
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  poll(): void {
    const tx = txidOf(this.o)
    if (tx === this.last) return
    this.last = tx
    const prev = this.shape
    const next = this.read()
    this.shape = next
    const where = formatPath(this.segs)
    const head = `${new Date().toISOString()} txid ${tx}`
    if (next.kind === 'missing') {
      if (prev.kind !== 'missing') this.print(`${head} delete ${where}`)
      return
    }
    if (next.kind !== 'container') {
      if (prev.kind === next.kind && prev.hash === next.hash) return
      this.print(`${head} set ${where} ${next.json}`)
      return
    }
    if (prev.kind !== 'container' || prev.ckind !== next.ckind) {
      this.print(`${head} set ${where} (a ${next.ckind} of ${next.children.size})`)
      return
    }
    for (const [k, h] of next.children) {
      if (prev.children.get(k) !== h) {
        const p = joinPath(where === '$' ? '' : where, next.ckind === 'list' ? Number(k) : k)
        this.print(`${head} set ${p} ${this.showChild(k, next.ckind)}`)
      }
    }
    for (const k of prev.children.keys()) {
      if (!next.children.has(k)) {
        const p = joinPath(where === '$' ? '' : where, next.ckind === 'list' ? Number(k) : k)
        this.print(`${head} delete ${p}`)
      }
    }
  }
}
