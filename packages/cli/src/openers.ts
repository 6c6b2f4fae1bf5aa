/**
 * Which other processes have a store open? `compact` must not replace a file that
 * another process has mapped (that process would keep writing to the old, unlinked
 * inode and its changes would be lost).
 *
 * The pager exposes no "am I the only opener" query, so this looks at the operating
 * system: on Linux every process that has the file open holds a descriptor
 * (/proc/PID/fd/N → the path) or a mapping of it (/proc/PID/maps lists the inode).
 * Processes of other users whose /proc entries we cannot read are reported as
 * unknown, and compact refuses then too. On systems without /proc the answer is
 * "cannot tell" and compact refuses unless --force.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'

export interface OpenersResult {
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
    return { pids: [], unreadable: 0, checked: true }
  }
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return { pids: [], unreadable: 0, checked: false }
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
  return { pids, unreadable, checked: true }
}
