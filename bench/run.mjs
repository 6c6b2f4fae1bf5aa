#!/usr/bin/env node
// The one benchmark command (`pnpm bench` at the repo root builds first, then runs
// this). Runs every workload — our layers and the peers side by side, in this same
// run — prints a table per workload with the ratio to the best peer, and writes
// docs/benchmarks.md plus SVG plots in docs/bench/.
//
//   node bench/run.mjs [--quick] [--out <dir>] [--only <group|id>[,...]] [--list]
//
// --quick   tiny sizes, a few seconds per workload (CI keeps the suite working; no thresholds)
// --out     where to write benchmarks.md and bench/*.svg (default: <repo>/docs for a
//           full run of everything; a partial or quick run writes to a temporary
//           directory unless --out is given, so it never replaces the published report)
// --only    workloads by group (pager, heap, objects, persist) or by id
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ourVersions } from './lib/ours.mjs'
import { peerVersions } from './lib/peers.mjs'
import { plotResult } from './lib/plot.mjs'
import { bestPeers, fmtNum, fmtRatio, mdTable, textTable } from './lib/result.mjs'
import { workloads } from './workloads/index.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '..')

function parseArgs(argv) {
  const a = { quick: false, out: null, only: null, list: false, timeout: null }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    if (k === '--quick') a.quick = true
    else if (k === '--list') a.list = true
    else if (k === '--out') a.out = resolve(argv[++i] ?? '')
    else if (k === '--only')
      a.only = String(argv[++i] ?? '')
        .split(',')
        .filter(Boolean)
    else if (k === '--timeout') a.timeout = Number(argv[++i])
    else if (k === '--help' || k === '-h') {
      console.log('usage: node bench/run.mjs [--quick] [--out <dir>] [--only <group|id>[,...]] [--list]')
      process.exit(0)
    } else {
      console.error(`unknown argument: ${k} (try --help)`)
      process.exit(2)
    }
  }
  if (!a.out) a.out = a.quick || a.only ? join(os.tmpdir(), 'persist-bench-report') : join(repo, 'docs')
  return a
}

const args = parseArgs(process.argv.slice(2))
let selected = workloads
if (args.only) {
  const known = new Set(workloads.flatMap((w) => [w.id, ...w.groups]))
  const bad = args.only.filter((g) => !known.has(g))
  if (bad.length) {
    console.error(`--only: unknown group or workload: ${bad.join(', ')} (known: ${[...known].join(', ')})`)
    process.exit(2)
  }
  selected = workloads.filter((w) => args.only.some((g) => g === w.id || w.groups.includes(g)))
}
if (args.list) {
  for (const w of selected) console.log(`${w.id.padEnd(14)} [${w.groups.join(', ')}]  ${w.title}`)
  process.exit(0)
}

function runWorker(w, resultPath) {
  const timeoutS = args.timeout ?? (args.quick ? 90 : 300)
  return new Promise((resolveRun) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', join(here, 'lib/worker.mjs'), w.id, JSON.stringify({ quick: args.quick, resultPath })],
      { stdio: ['ignore', 'inherit', 'inherit'], cwd: here },
    )
    const timer = setTimeout(() => {
      console.error(`  [${w.id}] timed out after ${timeoutS} s — killing it`)
      child.kill('SIGKILL')
    }, timeoutS * 1000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolveRun({ code, signal })
    })
  })
}

function machineInfo() {
  const cpus = os.cpus()
  // The file system type of the temp dir's mount (/proc/self/mounts: the longest mount
  // point containing it); `stat -f %T` names ext4 "ext2/ext3" (one magic number for all).
  let fs = 'unknown'
  try {
    const dir = realpathSync(os.tmpdir())
    let best = ''
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, at, type] = line.split(' ')
      if (!at || !type) continue
      const inside = dir === at || dir.startsWith(at === '/' ? '/' : `${at}/`)
      if (inside && at.length >= best.length) {
        best = at
        fs = type
      }
    }
  } catch {
    try {
      fs = execFileSync('stat', ['-f', '-c', '%T', os.tmpdir()], { encoding: 'utf8' }).trim()
    } catch {}
  }
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    'temp dir': `${os.tmpdir()} on ${fs}`,
    node: process.version,
    // Other jobs on the machine inflate fsync and file-write times most of all.
    'load average at start (1/5/15 min)': os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' / '),
  }
}

const started = new Date()
const machine = machineInfo()
console.log(`persist benchmarks — ${args.quick ? 'QUICK (tiny sizes, figures not meaningful)' : 'full run'}`)
console.log(`${selected.length} workloads: ${selected.map((w) => w.id).join(', ')}\n`)

const scratch = mkdtempSync(join(os.tmpdir(), 'persist-bench-results-'))
const results = []
for (const w of selected) {
  console.log(`▶ ${w.id}: ${w.title}`)
  const t0 = performance.now()
  const resultPath = join(scratch, `${w.id}.json`)
  const { code, signal } = await runWorker(w, resultPath)
  const seconds = (performance.now() - t0) / 1000
  if (code === 0 && existsSync(resultPath)) {
    const res = JSON.parse(readFileSync(resultPath, 'utf8'))
    res.seconds = seconds
    results.push(res)
    console.log(`\n${res.title}  (${seconds.toFixed(1)} s)`)
    console.log(textTable(res))
    for (const s of res.skipped) console.log(`  ${s.name}: ${s.reason}`)
    for (const n of res.notes) console.log(`  note: ${n}`)
    console.log('')
  } else {
    const why = signal ? `killed by ${signal}` : `exit code ${code}`
    console.log(`  ✗ ${w.id} FAILED (${why}) after ${seconds.toFixed(1)} s\n`)
    results.push({ id: w.id, title: w.title, failed: why, seconds })
  }
}
rmSync(scratch, { recursive: true, force: true })

// ---- report
const plotDir = join(args.out, 'bench')
mkdirSync(plotDir, { recursive: true })
const versions = { ...(await ourVersions()), ...peerVersions() }
const md = []
md.push('# Benchmarks')
md.push('')
md.push(
  `Generated by \`${args.quick ? 'node bench/run.mjs --quick' : 'pnpm bench'}\` on ${started.toISOString().replace('T', ' ').slice(0, 16)} UTC` +
    `${args.quick ? ' — **quick mode: tiny sizes, the figures only show that every workload runs**' : ''}. ` +
    'Every table was measured side by side in this one run: our layers and the peers, same machine, same file system. ' +
    'Micro-benchmarks use tinybench with batched samples (median of batch means); the ratio column is *best peer ÷ this row* ' +
    '(> 1 = faster than the fastest peer; for space and bytes written, smaller is better in the same way). ' +
    'Rows marked *reference* (a plain in-memory object) are the physical floor, not a peer. ' +
    'Plots: our rows red (bars) or solid thick lines, peers blue or dashed, the reference grey or dotted; raw figures in `bench/results.json`.',
)
md.push('')
md.push('## Machine and versions')
md.push('')
md.push('| what | value |')
md.push('| --- | --- |')
for (const [k, v] of Object.entries(machine)) md.push(`| ${k} | ${v} |`)
for (const [k, v] of Object.entries(versions)) md.push(`| ${k} | ${v} |`)
md.push('')
md.push('## Summary')
md.push('')
md.push('| workload | ours (best row) | best peer | ratio |')
md.push('| --- | --- | --- | ---: |')
for (const res of results) {
  if (res.failed) {
    md.push(`| ${res.title} | FAILED (${res.failed}) | | |`)
    continue
  }
  const best = bestPeers(res)
  const ci = typeof res.summary === 'number' && best[res.summary] ? res.summary : best.findIndex((b) => b)
  if (ci < 0) continue
  let ours = null
  for (const r of res.rows)
    if (r.kind === 'ours' && typeof r.values[ci] === 'number' && (!ours || r.values[ci] < ours.values[ci]))
      ours = r
  const col = res.columns[ci]
  const unit = col.unit ?? res.unit
  md.push(
    `| [${res.title}](#${res.id}) (${col.name}) | ${ours ? `${fmtNum(ours.values[ci])} ${unit} — ${ours.name}` : `${res.skipped.length ? res.skipped[0].reason : 'not available yet'}`} | ${fmtNum(best[ci].value)} ${unit} — ${best[ci].name} | ${ours ? fmtRatio(best[ci].value / ours.values[ci]) : '–'} |`,
  )
}
md.push('')
for (const res of results) {
  md.push(`<a id="${res.id}"></a>`)
  md.push('')
  md.push(`## ${res.title}`)
  md.push('')
  if (res.failed) {
    md.push(`**FAILED** (${res.failed}); see the run's output.`)
    md.push('')
    continue
  }
  if (res.description) md.push(res.description, '')
  md.push(mdTable(res))
  md.push('')
  const noted = res.rows.filter((r) => r.note)
  if (noted.length) {
    for (const r of noted) md.push(`- *${r.name}*: ${r.note}`)
    md.push('')
  }
  for (const s of res.skipped) md.push(`- **${s.name}**: ${s.reason}`)
  for (const n of res.notes) md.push(`- ${n}`)
  if (res.skipped.length || res.notes.length) md.push('')
  try {
    const svg = await plotResult(res)
    if (svg) {
      const file = join(plotDir, `${res.id}.svg`)
      writeFileSync(file, svg)
      md.push(`![${res.title}](${relative(args.out, file)})`)
      md.push('')
    }
  } catch (e) {
    md.push(`(plot failed: ${String(e?.message ?? e).split('\n')[0]})`, '')
  }
  md.push(`<sub>${res.seconds.toFixed(1)} s</sub>`)
  md.push('')
}
const total = (Date.now() - started.getTime()) / 1000
md.push(`Total run time: ${total.toFixed(0)} s.`)
md.push('')
const reportPath = join(args.out, 'benchmarks.md')
writeFileSync(reportPath, md.join('\n'))
// The raw results, for anyone who wants to re-plot or compare runs (formatted with
// the repo's biome so that `biome check .` stays clean when docs/ is committed).
const resultsPath = join(plotDir, 'results.json')
writeFileSync(
  resultsPath,
  `${JSON.stringify({ date: started.toISOString(), quick: args.quick, machine, versions, results }, null, 2)}\n`,
)
const biome = join(repo, 'node_modules/.bin/biome')
if (existsSync(biome)) spawnSync(biome, ['format', '--write', resultsPath], { stdio: 'ignore' })
const failed = results.filter((r) => r.failed)
console.log(
  `wrote ${relative(process.cwd(), reportPath) || reportPath} and ${relative(process.cwd(), plotDir) || plotDir}/*.svg`,
)
console.log(
  `${results.length - failed.length} of ${selected.length} workloads completed in ${total.toFixed(0)} s${failed.length ? `; FAILED: ${failed.map((f) => f.id).join(', ')}` : ''}`,
)
process.exit(failed.length ? 1 : 0)
