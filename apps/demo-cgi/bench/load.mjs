#!/usr/bin/env node
// Load benchmark (not a test): wrk against the counter page, served
//   1. as CGI under lighttpd + mod_cgi (one node process per request), and
//   2. by the node:cluster server (workers share one open store in-process),
// each for a bounded time on 127.0.0.1 only, on a fresh store. Prints requests/s and
// checks that the final visitor count equals start + the successful responses.
//
//   node bench/load.mjs [--duration 5] [--drain 5] [--modes lighttpd,cluster] [--workers 2]
//                       [--cgi-connections 16] [--cluster-connections 32]
// Needs `pnpm build` first, and wrk + lighttpd (apt-get install wrk lighttpd).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    drain: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'lighttpd,cluster' },
    workers: { type: 'string', default: '2' },
    'cgi-connections': { type: 'string', default: '16' },
    'cluster-connections': { type: 'string', default: '32' },
  },
})
const duration = Number(values.duration)
// Seconds of index-page requests after the counter phase: longer than any counter request takes.
const drain = Number(values.drain)
if (!(drain >= 1 && drain <= 600)) throw new RangeError('--drain must be 1..600 seconds')
if (!(duration > 0 && duration <= 600)) throw new RangeError('--duration must be 1..600 seconds')
const SERVE = fileURLToPath(new URL('../dist/serve.js', import.meta.url))
const LUA = fileURLToPath(new URL('./count.lua', import.meta.url))

if (spawnSync('wrk', ['--version']).error) {
  console.error('bench: wrk is not installed (apt-get install wrk)')
  process.exit(1)
}

function fetchText(url) {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let s = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (s += c))
      res.on('end', () => resolve(s))
    }).on('error', reject)
  })
}

async function visitor(base) {
  const m = /You are visitor <span class="big" id="visits">(\d+)</.exec(await fetchText(`${base}/counter`))
  if (!m) throw new Error('counter page without a visitor number')
  return Number(m[1])
}

function startServer(mode, store, extra) {
  const child = spawn(process.execPath, [SERVE, '--port', '0', '--mode', mode, ...extra], {
    env: { ...process.env, PERSIST_PATH: store },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c) => {
      out += c
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)
      if (m) resolve({ url: m[1], child, banner: out.split('\n')[0] })
    })
    child.once('exit', (code) => reject(new Error(`${mode} server exited (${code}):\n${out}`)))
  })
}

function stopServer(child) {
  return new Promise((resolve) => {
    child.removeAllListeners('exit')
    child.once('exit', resolve)
    child.kill('SIGTERM')
  })
}

function wrk(url, connections) {
  const threads = Math.min(2, connections)
  // -d: the counter phase plus 3 s of index-page requests, so nothing counted is in flight at the end.
  const args = [
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    `${duration + 3}s`,
    '--timeout',
    '10s',
  ]
  const r = spawnSync('wrk', [...args, '-s', LUA, url, '--', String(duration)], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`)
  const m = /BENCH ok=(\d+) bad=(\d+) idle=(\d+) errors=(\d+)/.exec(r.stdout)
  if (!m) throw new Error(`unexpected wrk output:\n${r.stdout}`)
  return { ok: Number(m[1]), bad: Number(m[2]), idle: Number(m[3]), errors: Number(m[4]) }
}

const results = []
let failed = false
for (const mode of values.modes.split(',')) {
  const dir = mkdtempSync(join(tmpdir(), 'persist-demo-bench-'))
  const connections = Number(mode === 'cluster' ? values['cluster-connections'] : values['cgi-connections'])
  const extra = mode === 'cluster' ? ['--workers', values.workers] : []
  const server = await startServer(mode, join(dir, 'bench.persist'), extra)
  try {
    const start = await visitor(server.url)
    const w = wrk(`${server.url}/`, connections)
    const end = await visitor(server.url)
    const expected = start + w.ok + 1
    const exact = end === expected
    if (!exact || w.bad > 0) failed = true
    results.push({
      mode: server.banner.replace(/^persist demo \((.*)\) on .*$/, '$1'),
      connections,
      'counter req/s': Math.round(w.ok / duration),
      'ok responses': w.ok,
      'non-200': w.bad,
      'socket errors': w.errors,
      'final count': end,
      'start + ok + 1': expected,
      exact: exact ? 'yes' : 'NO',
    })
  } finally {
    await stopServer(server.child)
    rmSync(dir, { recursive: true, force: true })
  }
}

console.log(
  `wrk, ${duration} s of GET /counter per mode, 127.0.0.1, fresh store each (${new Date().toISOString()})`,
)
console.table(results)
if (failed) {
  console.error('bench: the final count does not match the successful responses (or some failed)')
  process.exit(1)
}
