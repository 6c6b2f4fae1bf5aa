// Charts as SVG, rendered in Node (no browser) with vega-lite → vega → view.toSVG().
import * as vega from 'vega'
import * as vl from 'vega-lite'
import { fmtNum } from './result.mjs'

const COLORS = { ours: '#d62728', peer: '#1f77b4', ref: '#7f7f7f' }

async function render(spec) {
  const compiled = vl.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

/** One SVG for a workload result, or null when there is nothing to plot. */
export async function plotResult(res) {
  const plot = res.plot
  if (!plot) return null
  const unit = res.columns[plot.column ?? 0]?.unit ?? res.unit
  if (plot.type === 'bar') {
    const i = plot.column ?? 0
    const values = res.rows
      .filter((r) => typeof r.values[i] === 'number' && r.values[i] > 0)
      .map((r) => ({ name: r.name, value: r.values[i], kind: r.kind === 'ref' ? 'reference' : r.kind }))
    if (values.length === 0) return null
    // Bars on a log axis need an explicit baseline (log(0) does not exist): the power
    // of ten below the smallest value.
    const log = plot.log !== false
    const min = Math.min(...values.map((v) => v.value))
    const max = Math.max(...values.map((v) => v.value))
    const base = log ? 10 ** Math.floor(Math.log10(min)) : 0
    const xScale = log
      ? { type: 'log', domain: [base, 10 ** Math.ceil(Math.log10(max * 1.0001))] }
      : { type: 'linear' }
    for (const v of values) v.label = fmtNum(v.value)
    return render({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: plot.title ?? res.title,
      width: 480,
      height: { step: 24 },
      data: { values },
      encoding: {
        y: {
          field: 'name',
          type: 'nominal',
          sort: { field: 'value', order: 'ascending' },
          title: null,
          axis: { labelLimit: 400 },
        },
      },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'value', type: 'quantitative', scale: xScale, title: unit },
            x2: { datum: base },
            color: {
              field: 'kind',
              type: 'nominal',
              scale: { domain: ['ours', 'peer', 'reference'], range: [COLORS.ours, COLORS.peer, COLORS.ref] },
              title: null,
            },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 },
          encoding: { x: { field: 'value', type: 'quantitative', scale: xScale }, text: { field: 'label' } },
        },
      ],
    })
  }
  if (plot.type === 'line') {
    // One line per row across the columns that carry a numeric x.
    const values = []
    for (const r of res.rows) {
      res.columns.forEach((c, i) => {
        const v = r.values[i]
        if (typeof c.x === 'number' && typeof v === 'number' && v > 0)
          values.push({ name: r.name, x: c.x, value: v, kind: r.kind === 'ref' ? 'reference' : r.kind })
      })
    }
    if (values.length === 0) return null
    return render({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: plot.title ?? res.title,
      width: 520,
      height: 320,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: plot.xTitle ?? 'size' },
        y: {
          field: 'value',
          type: 'quantitative',
          scale: { type: plot.logY === false ? 'linear' : 'log' },
          title: plot.yTitle ?? unit,
        },
        color: {
          field: 'name',
          type: 'nominal',
          title: null,
          legend: { orient: 'bottom', columns: 1, labelLimit: 500 },
        },
        // Ours solid and thick, peers dashed, the reference dotted (said in the report).
        strokeDash: {
          field: 'kind',
          type: 'nominal',
          title: null,
          scale: {
            domain: ['ours', 'peer', 'reference'],
            range: [
              [1, 0],
              [6, 3],
              [2, 2],
            ],
          },
          legend: null,
        },
        strokeWidth: { condition: { test: "datum.kind === 'ours'", value: 3 }, value: 1.5 },
      },
    })
  }
  return null
}
