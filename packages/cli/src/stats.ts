/**
 * Human-readable `persist stats`: the nested statistics object of the layers,
 * printed as an indented list; byte counts also shown in KiB/MiB, and the free
 * space of the file (free pages × 4096) called out.
 */
const PAGE = 4096

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

function fmtValue(key: string, v: unknown): string {
  if (typeof v === 'number') {
    const s = v.toLocaleString('en-US')
    return /bytes$/i.test(key) && v >= 1024 ? `${s} (${fmtBytes(v)})` : s
  }
  if (typeof v === 'bigint') return v.toString()
  return typeof v === 'string' ? v : JSON.stringify(v)
}

function find(o: unknown, re: RegExp): number | undefined {
  if (o === null || typeof o !== 'object') return undefined
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number' && re.test(k)) return v
    const inner = find(v, re)
    if (inner !== undefined) return inner
  }
  return undefined
}

function inUse(r: Record<string, unknown>): boolean {
  for (const key of ['live', 'slabs', 'blocks', 'count'])
    if (typeof r[key] === 'number' && (r[key] as number) > 0) return true
  return !('live' in r || 'slabs' in r || 'blocks' in r || 'count' in r)
}

export function formatStats(st: Record<string, unknown>): string {
  const lines: string[] = []
  const walk = (o: Record<string, unknown>, depth: number) => {
    const pad = '  '.repeat(depth)
    for (const [k, v] of Object.entries(o)) {
      if (Array.isArray(v)) {
        // e.g. the heap's size classes: show only the rows in use, one line each
        const rows = v.filter(
          (r) =>
            r === null ||
            typeof r !== 'object' ||
            Object.values(r).every((x) => typeof x !== 'number') ||
            inUse(r),
        )
        lines.push(`${pad}${k}: ${v.length} (${rows.length} in use)`)
        for (const r of rows)
          lines.push(
            `${pad}  ${
              r !== null && typeof r === 'object'
                ? Object.entries(r)
                    .map(([a, b]) => `${a}=${fmtValue(a, b)}`)
                    .join(' ')
                : fmtValue(k, r)
            }`,
          )
      } else if (v !== null && typeof v === 'object') {
        lines.push(`${pad}${k}:`)
        walk(v as Record<string, unknown>, depth + 1)
      } else lines.push(`${pad}${k}: ${fmtValue(k, v)}`)
    }
  }
  walk(st, 0)
  const free = find(st, /^(free_?pages|freePages)$/i)
  if (free !== undefined)
    lines.push(`free space: ${fmtBytes(free * PAGE)} in ${free.toLocaleString('en-US')} free page(s)`)
  return `${lines.join('\n')}\n`
}
