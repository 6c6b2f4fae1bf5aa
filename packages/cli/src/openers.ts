/**
 * Which other processes have a store open? `compact` must not replace a file that
 * another process has mapped (that process would keep writing to the old, unlinked
 * inode and its changes would be lost).
 *
 * The pager exposes no "am I the only opener" query, so this asks the operating
 * system, two ways (Linux):
 *  1. the open lock (FORMAT.md "Locking protocol", step 2): every handle that opens a
 *     store for writing holds an OFD lock on byte 0 of the file for as long as it is
 *     open. /proc/locks lists OFD locks of every process, whoever owns them, by
 *     device and inode — so counting them is exact and needs no permission;
 *  2. descriptors and mappings: /proc/PID/fd/N and /proc/PID/maps of every process we
 *     may inspect (this also finds read-only openers, which take no lock).
 * Processes whose /proc entries we cannot read are counted as "unreadable".
 * Without /proc the answer is "cannot tell" (checked: false).
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'

export interface OpenersResult {
  /** OFD locks held on byte 0 of the file, by any process (this one included). */
  openLocks: number
  /** Other processes that have the file open or mapped. */
  pids: number[]
  /** Processes whose descriptors/mappings could not be read (permission). */
  unreadable: number
  /** False when /proc is not available: nothing could be checked. */
  checked: boolean
}

export function otherOpeners(file: string): OpenersResult {
  let st: { dev: number; ino: number }
  try {
    st = statSync(file)
  } catch {
    return { openLocks: 0, pids: [], unreadable: 0, checked: true }
  }
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return { openLocks: 0, pids: [], unreadable: 0, checked: false }
  }
  const me = process.pid
  const pids: number[] = []
  let unreadable = 0
  // /proc/PID/maps prints the inode in decimal and the device as major:minor (hex).
  const inoText = ` ${st.ino} `
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (pid === me) continue
    let found = false
    let fds: string[] | undefined
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') unreadable++
      continue
    }
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`)
        if (!link.startsWith('/')) continue
        const s = statSync(`/proc/${pid}/fd/${fd}`)
        if (s.ino === st.ino && s.dev === st.dev) {
          found = true
          break
        }
      } catch {}
    }
    if (!found) {
      try {
        const maps = readFileSync(`/proc/${pid}/maps`, 'latin1')
        if (maps.includes(inoText)) {
          for (const line of maps.split('\n')) {
            // address perms offset dev inode path
            const parts = line.split(/\s+/, 6)
            if (parts.length >= 6 && parts[4] === String(st.ino)) {
              try {
                const s = statSync(parts[5])
                if (s.ino === st.ino && s.dev === st.dev) {
                  found = true
                  break
                }
              } catch {}
            }
          }
        }
      } catch {}
    }
    if (found) pids.push(pid)
  }
  return { openLocks: ofdLocks(st.dev, st.ino), pids, unreadable, checked: true }
}

/**
 * Counts granted OFD locks covering byte 0 of the file (dev, ino) in /proc/locks.
 * Line format: `ID: OFDLCK ADVISORY READ -1 MAJ:MIN:INODE START END` (MAJ/MIN in hex;
 * waiting requests have `->` after the ID and are not counted).
 */
export function ofdLocks(dev: number, ino: number): number {
  let text: string
  try {
    text = readFileSync('/proc/locks', 'latin1')
  } catch {
    return 0
  }
  // Linux dev_t encoding (glibc gnu_dev_major/minor).
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff)
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff & 0xfffff)
  let n = 0
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8 || f[1] !== 'OFDLCK') continue
    const id = f[5].split(':')
    if (id.length !== 3 || Number(id[2]) !== ino) continue
    if (Number.parseInt(id[0], 16) !== major || Number.parseInt(id[1], 16) !== minor) continue
    if (Number(f[6]) === 0) n++
  }
  return n
}
