/**
 * `persist compact`: copies the live graph of FILE into FILE.compact-tmp, verifies
 * the copy, fsyncs it and renames it over FILE (atomic on POSIX), then fsyncs the
 * directory. The copy contains only reachable records, packed into fresh pages, so
 * space freed by deletes is returned to the file system.
 *
 * Safety:
 *  C1 refuses while another process has FILE open or mapped (openers.ts), checked
 *     before the copy and again just before the rename;
 *  C2 holds FILE's store lock from before the copy until after the rename, so no
 *     commit can land in FILE that the copy would miss;
 *  C3 the rename happens only after the copy passed check() and was fsynced: a crash
 *     at any point leaves either the old FILE or the complete new one (a leftover
 *     FILE.compact-tmp is deleted by the next compact);
 *  C4 shared records (rc_refs > 1) stay shared and cycles are kept: the copy maps
 *     old record offsets to new ones for exactly those records.
 *  C5 the redo log of durability 'full' (FILE-wal) never outlives the old layout: it
 *     is removed before the rename (see the code). The compacted file is written in
 *     'process' mode; open it with durability 'full' to start a new log.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs'
import { dirname } from 'node:path'
import type { Objects } from '@persist/objects'
import { PersistError } from '@persist/pager'
import { ClassValue, dictEntriesOf, openObjects, RecordRef, refCountOf, rootRef } from './access.js'
import { otherOpeners } from './openers.js'
import type { Progress } from './progress.js'

export interface CompactResult {
  before: number
  after: number
  entries: number
}

function syncDir(dir: string): void {
  const dfd = openSync(dir, 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
}

/** Records copied between intermediate commits of the new file. */
const COMMIT_EVERY = 20_000

/** C1: refuses unless this process's own `ownLocks` open locks are the only ones on FILE. */
function refuseIfShared(file: string, when: string, ownLocks: number): void {
  const r = otherOpeners(file)
  if (!r.checked)
    throw new PersistError(
      'PERSIST_UNSUPPORTED',
      `cannot tell whether another process has ${file} open (no /proc on this system), so compact refuses ${when}`,
    )
  if (r.pids.length > 0 || r.openLocks > ownLocks)
    throw new PersistError(
      'PERSIST_LOCKED',
      `${file} is open in another process (${r.pids.length ? `pid ${r.pids.join(', ')}` : `${r.openLocks - ownLocks} other open handle(s)`}); close it there first — compact replaces the file, and that process would keep writing to the old copy`,
    )
  const mode = statSync(file).mode
  if (r.unreadable > 0 && (mode & 0o066) !== 0)
    throw new PersistError(
      'PERSIST_PERM',
      `${file} is readable by other users and ${r.unreadable} process(es) could not be inspected; run compact as the file's owner with mode 0600, or as root`,
    )
}

export function compact(file: string, progress: Progress | undefined, lockTimeoutMs?: number): CompactResult {
  refuseIfShared(file, 'before copying', 0)
  const before = statSync(file).size
  const mode = statSync(file).mode & 0o777
  const tmp = `${file}.compact-tmp`
  const src = openObjects(file, { lockTimeoutMs })
  let dst: Objects | undefined
  try {
    src.begin() // C2: held until after the rename
    refuseIfShared(file, 'before copying', 1) // C1 again, now that our own handle holds one open lock
    if (existsSync(tmp)) unlinkSync(tmp)
    dst = openObjects(tmp, { create: true })
    const copier = new Copier(src, dst)
    const root = rootRef(src)
    const total = src.dictSize(root.off)
    progress?.setTotal(total)
    dst.begin()
    const droot = rootRef(dst)
    copier.alias(root, droot)
    let entries = 0
    for (const [k, x] of dictEntriesOf(src, root.off)) {
      copier.put(droot, k, x)
      progress?.tick(++entries)
    }
    dst.commit()
    dst.begin()
    const problems = dst.check()
    const copied = dst.dictSize(droot.off)
    dst.commit()
    dst.close()
    dst = undefined
    if (problems.length > 0 || copied !== total)
      throw new PersistError(
        'PERSIST_CORRUPT',
        `the compacted copy failed verification (${problems.length} problem(s), ${copied}/${total} root entries): ${problems.slice(0, 3).join('; ')} — ${file} was left unchanged`,
      )
    chmodSync(tmp, mode)
    const fd = openSync(tmp, 'r+')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    refuseIfShared(file, 'to replace it', 1) // C1, second look (our own handle holds one open lock)
    // C5: a durability-'full' store has a redo log FILE-wal. Opening FILE (as the only
    // opener) replayed it into FILE and synced FILE, so the log holds nothing FILE
    // lacks — but its records name offsets of the OLD layout: left next to the new
    // file, the next opener would replay them into it. Remove it (and sync the
    // directory) BEFORE the rename, so no crash can pair the new file with the log.
    const wal = `${file}-wal`
    if (existsSync(wal)) {
      unlinkSync(wal)
      syncDir(dirname(file))
    }
    renameSync(tmp, file)
    syncDir(dirname(file))
    return { before, after: statSync(file).size, entries }
  } catch (e) {
    try {
      dst?.close()
    } catch {}
    try {
      if (existsSync(tmp)) unlinkSync(tmp)
    } catch {}
    throw e
  } finally {
    try {
      if (src.inTransaction) src.abort()
    } catch {}
    src.close()
  }
}

/** Copies values from src into dst record by record (never a whole sub-tree in memory). */
class Copier {
  /** src offset → dst offset, for shared records only (C4). */
  private readonly map = new Map<number, { off: number; kind: RecordRef['kind'] }>()
  private ops = 0

  constructor(
    private readonly src: Objects,
    private readonly dst: Objects,
  ) {}

  /** Declares that src record `from` is already copied as dst record `to` (the roots). */
  alias(from: RecordRef, to: RecordRef): void {
    this.map.set(from.off, { off: to.off, kind: to.kind })
  }

  /** Stores v (a value read from src) at parent[key] (dict) or appends it (list, key null). */
  put(parent: RecordRef, key: string | null, v: unknown): void {
    const dst = this.dst
    if (++this.ops % COMMIT_EVERY === 0) {
      dst.commit()
      dst.begin()
    }
    if (!(v instanceof RecordRef)) {
      this.set(parent, key, v)
      return
    }
    const known = this.map.get(v.off)
    if (known) {
      this.set(parent, key, new RecordRef(dst, known.off, known.kind))
      return
    }
    const src = this.src
    const empty =
      v.kind === 'list' ? [] : v.kind === 'object' ? new ClassValue(src.className(v.off) ?? '', {}) : {}
    this.set(parent, key, empty)
    const made = (
      key === null ? dst.listGet(parent.off, dst.listLength(parent.off) - 1) : dst.dictGet(parent.off, key)
    ) as RecordRef
    if (refCountOf(src, v.off) > 1) this.map.set(v.off, { off: made.off, kind: made.kind })
    if (v.kind === 'list') {
      const n = src.listLength(v.off)
      for (let i = 0; i < n; i++) this.put(made, null, src.listGet(v.off, i))
    } else {
      for (const [k, x] of dictEntriesOf(src, v.off)) this.put(made, k, x)
    }
  }

  private set(parent: RecordRef, key: string | null, v: unknown): void {
    if (key === null) this.dst.listPush(parent.off, v)
    else this.dst.dictSet(parent.off, key, v)
  }
}
