/**
 * `pnpm demo`: serves the counter and people pages on 127.0.0.1.
 *
 *   node dist/serve.js [--port N] [--mode cgi|lighttpd|gateway|cluster] [--workers N]
 *
 * --mode cgi (default): one process per request — lighttpd + mod_cgi when lighttpd is
 *   installed, else the built-in RFC 3875 gateway. `lighttpd` / `gateway` force one.
 * --mode cluster: node:cluster workers (default 2) share one open store in-process.
 * Port: --port, else env PORT, else 8080 (0 picks a free one). Store: env PERSIST_PATH,
 * else apps/demo-cgi/data/demo.persist.
 */
import cluster from 'node:cluster'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { isPersistError, open } from './backend.js'
import { type ClusterOptions, runWorker, startCluster } from './cluster.js'
import { startGateway } from './gateway.js'
import { findLighttpd, lighttpdVersion, startLighttpd } from './lighttpd.js'
import { storePath } from './store-path.js'

const HOST = '127.0.0.1'
const MODES = ['cgi', 'lighttpd', 'gateway', 'cluster'] as const
type Mode = (typeof MODES)[number]

const USAGE = `usage: node dist/serve.js [--port N] [--mode cgi|lighttpd|gateway|cluster] [--workers N]
  --mode cgi       one process per request: lighttpd + mod_cgi if installed, else the built-in gateway (default)
  --mode lighttpd  require lighttpd + mod_cgi
  --mode gateway   the built-in RFC 3875 gateway (node:http spawning each CGI program)
  --mode cluster   node:cluster workers serving the pages in-process from one shared store
  --workers N      cluster workers (default 2)
  --port N         port on ${HOST} (default: env PORT, else 8080; 0 = any free port)
Store file: env PERSIST_PATH, else apps/demo-cgi/data/demo.persist.`

interface Options {
  mode: Mode
  port: number
  workers: number
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n${USAGE}\n`)
  process.exit(2)
}

function parseOptions(argv: string[]): Options {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        mode: { type: 'string', default: 'cgi' },
        workers: { type: 'string', default: '2' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    fail((e as Error).message)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const portText = (values.port as string | undefined) ?? process.env.PORT ?? '8080'
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535)
    fail(`--port must be an integer from 0 to 65535, got "${portText}"`)
  const mode = values.mode as Mode
  if (!MODES.includes(mode)) fail(`--mode must be one of ${MODES.join(', ')}, got "${mode}"`)
  const workersText = values.workers as string
  const workers = Number(workersText)
  if (!/^\d+$/.test(workersText) || workers < 1 || workers > 64) {
    fail(`--workers must be an integer from 1 to 64, got "${workersText}"`)
  }
  return { mode, port, workers }
}

/**
 * Binds `port` (0: any) once and releases it, returning the port: lighttpd cannot report
 * the port it picked for 0, and a port in use must be reported before lighttpd starts.
 */
function probePort(port: number): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', (e: NodeJS.ErrnoException) => rej(e.code === 'EADDRINUSE' ? portInUse(port) : e))
    s.listen(port, HOST, () => {
      const { port } = s.address() as { port: number }
      s.close(() => res(port))
    })
  })
}

let stopping = false

/**
 * Opens the store once before serving: creates and initialises a new file before
 * concurrent requests or workers arrive, and turns a bad file (corrupt, newer format,
 * not a store) into one clear startup error instead of a 500 on every request.
 */
function prepareStore(path: string): void {
  try {
    const s = open(path)
    s.transaction(() => s.root)
    s.close()
  } catch (e) {
    const code = isPersistError(e) ? ` (${e.code})` : ''
    throw new Error(`cannot use the store ${path}${code}: ${(e as Error).message}`)
  }
}

function portInUse(port: number): Error {
  return new Error(`port ${port} on ${HOST} is already in use: stop what uses it or pick another with --port`)
}

/** Stops `stop` on SIGINT/SIGTERM, then exits 0; a second signal exits at once. */
function onSignals(stop: () => Promise<void>): void {
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1)
    stopping = true
    process.stderr.write(`demo: ${signal}, stopping\n`)
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}

async function main(): Promise<void> {
  // A leading "--" (npm habit: `pnpm demo -- --mode cluster`) is not an argument.
  const argv = process.argv.slice(2)
  if (argv[0] === '--') argv.shift()
  const opts = parseOptions(argv)
  const store = resolve(storePath())
  mkdirSync(dirname(store), { recursive: true })
  const clusterOptions: ClusterOptions = {
    host: HOST,
    port: opts.port,
    workers: opts.workers,
    storePath: store,
  }
  if (cluster.isWorker) return runWorker(clusterOptions)
  prepareStore(store)

  const cgiDir = fileURLToPath(new URL('./cgi/', import.meta.url))
  const cgiEnv: Record<string, string> = { PERSIST_PATH: store, PATH: process.env.PATH ?? '/usr/bin:/bin' }

  let mode = opts.mode
  const lighttpd = findLighttpd()
  if (mode === 'lighttpd' && !lighttpd) {
    process.stderr.write(
      'demo: --mode lighttpd needs lighttpd on PATH: install it (apt-get install lighttpd).\n',
    )
    process.exit(1)
  }
  if (mode === 'cgi') mode = lighttpd ? 'lighttpd' : 'gateway'

  let port = opts.port
  let how: string
  let extra = ''
  let stop: () => Promise<void>
  if (mode === 'lighttpd') {
    port = await probePort(port)
    const running = await startLighttpd({ bin: lighttpd!, host: HOST, port, cgiDir, env: cgiEnv })
    how = `CGI under lighttpd ${lighttpdVersion(lighttpd!)} + mod_cgi, one process per request`
    stop = running.stop
    extra = `  lighttpd config: ${running.dir}/lighttpd.conf\n`
    running.child.on('exit', (code, signal) => {
      if (stopping) return
      process.stderr.write(`demo: lighttpd exited (${code ?? signal})\n`)
      process.exit(1)
    })
  } else if (mode === 'gateway') {
    const server = await startGateway({ host: HOST, port, cgiDir, env: cgiEnv }).catch((e) => {
      throw e.code === 'EADDRINUSE' ? portInUse(port) : e
    })
    port = (server.address() as { port: number }).port
    how = `CGI under the built-in gateway${opts.mode === 'cgi' ? ' (lighttpd not found)' : ''}, one process per request`
    stop = () =>
      new Promise((res) => {
        server.close(() => res())
        server.closeAllConnections()
      })
  } else {
    const running = await startCluster(clusterOptions, fileURLToPath(import.meta.url), argv)
    port = running.port
    how = `node:cluster, ${opts.workers} workers sharing one open store`
    extra = `  workers: ${running.pids.join(' ')}\n`
    stop = running.stop
  }
  onSignals(stop)
  process.stdout.write(
    `persist demo (${how}) on http://${HOST}:${port}/\n` +
      `  pages: http://${HOST}:${port}/counter  http://${HOST}:${port}/people\n` +
      `  store: ${store}\n${extra}  Ctrl-C to stop\n`,
  )
}

main().catch((e) => {
  process.stderr.write(`demo: ${(e as Error)?.message ?? e}\n`)
  process.exit(1)
})
