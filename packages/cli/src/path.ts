/**
 * PATH syntax of `persist dump|load|watch`: a JS-like accessor chain starting at the
 * root dict (or at `$`, the root itself):
 *
 *   people.joe          dict key `people`, then key `joe`
 *   items[3]            key `items`, then list index 3
 *   people["a b"].tags  a key that is not an identifier, as a JSON string
 *   $  or  ''           the root
 *
 * Identifier-like segments are `[A-Za-z_$][A-Za-z0-9_$-]*` after a dot (a leading `$`
 * alone means the root). Everything else goes in brackets: a non-negative integer
 * (a list index, or a dict key of that text when the container is a dict) or a JSON
 * string. formatPath() writes the shortest form parsePath() reads back.
 */
import { PersistError } from '@persist/pager'

/** One step of a path: a dict key (string) or a list index (number). */
export type PathSegment = string | number

const IDENT = /^[A-Za-z_][A-Za-z0-9_$-]*$|^\$[A-Za-z0-9_$-]+$/

function bad(path: string, at: number, what: string): never {
  throw new PersistError(
    'PERSIST_INVALID',
    `bad PATH ${JSON.stringify(path)} at character ${at + 1}: ${what} (write it like people.joe, items[3] or people["a b"])`,
  )
}

/** Parses a PATH into segments; throws PersistError PERSIST_INVALID with the position of the mistake. */
export function parsePath(path: string): PathSegment[] {
  if (typeof path !== 'string') throw new TypeError('parsePath(path): path must be a string')
  const segs: PathSegment[] = []
  let i = 0
  const n = path.length
  if (path === '$') return segs
  if (path.startsWith('$.') || path.startsWith('$[')) i = 1
  let first = true
  while (i < n) {
    const c = path[i]
    if (c === '[') {
      const close = scanBracket(path, i)
      const inner = path.slice(i + 1, close).trim()
      if (/^\d+$/.test(inner)) {
        const v = Number(inner)
        if (!Number.isSafeInteger(v)) bad(path, i, 'index too large')
        segs.push(v)
      } else if (inner.startsWith('"')) {
        let key: unknown
        try {
          key = JSON.parse(inner)
        } catch {
          bad(path, i, 'the bracketed key is not a valid JSON string')
        }
        if (typeof key !== 'string') bad(path, i, 'the bracketed key is not a string')
        segs.push(key as string)
      } else bad(path, i, 'expected [<index>] or ["<key>"]')
      i = close + 1
    } else {
      if (c === '.') {
        if (first && i === 0) bad(path, i, 'a PATH does not start with a dot')
        i++
      } else if (!first) bad(path, i, "expected '.' or '['")
      let j = i
      while (j < n && path[j] !== '.' && path[j] !== '[') j++
      const key = path.slice(i, j)
      if (key.length === 0) bad(path, i, 'empty key')
      segs.push(key)
      i = j
    }
    first = false
  }
  return segs
}

function scanBracket(path: string, open: number): number {
  let j = open + 1
  let inStr = false
  for (; j < path.length; j++) {
    const ch = path[j]
    if (inStr) {
      if (ch === '\\') j++
      else if (ch === '"') inStr = false
    } else if (ch === '"') inStr = true
    else if (ch === ']') return j
  }
  bad(path, open, "unclosed '['")
}

/** Appends one segment to a formatted path (`$` is the root). */
export function joinPath(base: string, seg: PathSegment): string {
  if (typeof seg === 'number') return `${base}[${seg}]`
  if (IDENT.test(seg)) return base === '' ? seg : `${base}.${seg}`
  return `${base}[${JSON.stringify(seg)}]`
}

/** Formats segments so that parsePath(formatPath(s)) deep-equals s ('$' for the root). */
export function formatPath(segs: readonly PathSegment[]): string {
  let s = ''
  for (const seg of segs) s = joinPath(s, seg)
  return s === '' ? '$' : s
}
