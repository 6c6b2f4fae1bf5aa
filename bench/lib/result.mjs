// The result of one workload: a table of rows (our variants, peers, references)
// by columns (one measure, or one per value size / store size), plus notes.
// Ratios: per ratio column, "best peer" is the fastest (lowest) peer row; every
// row's ratio is bestPeer / value, so > 1 means faster than the best peer.
// Reference rows (e.g. a plain in-memory object) are shown but never "best peer".

export class Result {
  constructor({ id, title, description = '', columns, unit = 'µs/op', plot = null, summary = null }) {
    this.id = id
    this.title = title
    this.description = description
    this.unit = unit
    // columns: [{ name, unit?, ratio? (default true), x? (numeric x for plots) }]
    this.columns = columns.map((c) => (typeof c === 'string' ? { name: c } : c))
    this.rows = []
    this.skipped = []
    this.notes = []
    this.plot = plot
    // Index of the column the report's summary table quotes (default: the first ratio column).
    this.summary = summary
  }

  /** kind: 'ours' | 'peer' | 'ref'. values: one per column (number, string or null). */
  row(name, kind, values, note) {
    if (!Array.isArray(values)) values = [values]
    this.rows.push({ name, kind, values, note })
    return this
  }

  skip(name, reason) {
    this.skipped.push({ name, reason })
    return this
  }

  note(text) {
    this.notes.push(text)
    return this
  }

  toJSON() {
    return {
      id: this.id,
      title: this.title,
      description: this.description,
      unit: this.unit,
      columns: this.columns,
      rows: this.rows,
      skipped: this.skipped,
      notes: this.notes,
      plot: this.plot,
      summary: this.summary,
    }
  }
}

/** Best (lowest) peer value per column, or null. */
export function bestPeers(res) {
  return res.columns.map((c, i) => {
    if (c.ratio === false) return null
    let best = null
    for (const r of res.rows) {
      const v = r.values[i]
      if (
        r.kind === 'peer' &&
        typeof v === 'number' &&
        Number.isFinite(v) &&
        v > 0 &&
        (best === null || v < best.value)
      )
        best = { name: r.name, value: v }
    }
    return best
  })
}

export function fmtNum(v) {
  if (v === null || v === undefined) return '–'
  if (typeof v !== 'number') return String(v)
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a === 0) return '0'
  if (a >= 1e6) return v.toExponential(2)
  if (a >= 1000) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  if (a >= 0.01) return v.toFixed(3)
  return v.toPrecision(2)
}

export function fmtRatio(r) {
  if (r === null || !Number.isFinite(r)) return '–'
  if (r >= 100) return `${Math.round(r).toLocaleString('en-US')}×`
  if (r >= 10) return `${r.toFixed(1)}×`
  if (r >= 0.01) return `${r.toFixed(2)}×`
  return `${r.toPrecision(1)}×`
}

/** The table as rows of strings: header first. */
export function tableCells(res) {
  const best = bestPeers(res)
  const header = ['', 'kind']
  for (let i = 0; i < res.columns.length; i++) {
    const c = res.columns[i]
    header.push(c.unit ? `${c.name} (${c.unit})` : c.name)
    if (best[i]) header.push('vs best peer')
  }
  const lines = [header]
  for (const r of res.rows) {
    const line = [r.name, r.kind === 'ref' ? 'reference' : r.kind]
    for (let i = 0; i < res.columns.length; i++) {
      const v = r.values[i]
      line.push(fmtNum(v))
      if (best[i]) line.push(typeof v === 'number' && v > 0 ? fmtRatio(best[i].value / v) : '–')
    }
    lines.push(line)
  }
  return lines
}

/** Plain-text table for the terminal. */
export function textTable(res) {
  const cells = tableCells(res)
  const widths = cells[0].map((_, j) => Math.max(...cells.map((l) => String(l[j]).length)))
  const fmt = (l) =>
    l.map((c, j) => (j === 0 ? String(c).padEnd(widths[j]) : String(c).padStart(widths[j]))).join('  ')
  const out = [fmt(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(fmt)]
  return out.join('\n')
}

/** Markdown table. */
export function mdTable(res) {
  const cells = tableCells(res)
  const esc = (s) => String(s).replace(/\|/g, '\\|')
  const out = [
    `| ${cells[0].map(esc).join(' | ')} |`,
    `|${cells[0].map((_, j) => (j < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
  ]
  for (const l of cells.slice(1)) out.push(`| ${l.map(esc).join(' | ')} |`)
  return out.join('\n')
}
