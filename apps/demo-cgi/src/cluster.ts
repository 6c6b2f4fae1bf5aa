/**
 * Cluster mode: a node:cluster primary forks N long-running workers that share
 * the listening socket; each worker opens the store ONCE and serves every request
 * in-process (no spawn per request). All workers write the same store file, so a
 * visit counted by one is seen by the next request on any other.
 */
import cluster, { type Worker } from 'node:cluster'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname } from 'node:path'
import { open, type Store } from './backend.js'
import { BodyTooLarge, notFound, readRequestBody, sendResponse, splitUrl, tooLarge } from './http-util.js'
import { type DemoRequest, failurePage, indexPage, PAGES } from './pages.js'

/** How long a worker waits for the store's writer lock before answering 503 (ms). */
const LOCK_TIMEOUT_MS = 10_000

export interface ClusterOptions {
  host: string
  port: number
  workers: number
  storePath: string
}

/** Runs in each worker: one store, one HTTP server. Tells the primary its port when listening. */
export function runWorker(o: ClusterOptions): void {
  mkdirSync(dirname(o.storePath), { recursive: true })
  const store: Store = open(o.storePath, { lockTimeoutMs: LOCK_TIMEOUT_MS })
  const server = createServer(async (req, res) => {
    const { path, query } = splitUrl(req.url)
    try {
      if (path === '/' || path === '/index.html') return sendResponse(res, indexPage())
      const entry = PAGES[path]
      if (!entry) return sendResponse(res, notFound(path))
      const body = await readRequestBody(req)
      const dreq: DemoRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        path,
        query,
        contentType: req.headers['content-type'] ?? '',
        body,
      }
      // Synchronous from here: the page's transaction runs within this one turn.
      sendResponse(res, entry.page(store, dreq))
    } catch (e) {
      if (e instanceof BodyTooLarge) return sendResponse(res, tooLarge())
      process.stderr.write(`demo worker ${process.pid}: ${req.method} ${path}: ${(e as Error)?.stack ?? e}\n`)
      if (!res.headersSent) sendResponse(res, failurePage(e))
    }
  })
  const shutdown = () => {
    server.close()
    server.closeAllConnections()
    store.close()
    process.exit(0)
  }
  process.on('SIGTERM', shutdown)
  process.on('disconnect', shutdown)
  server.once('error', (e: NodeJS.ErrnoException) => {
    const message =
      e.code === 'EADDRINUSE'
        ? `port ${o.port} on ${o.host} is already in use: stop what uses it or pick another with --port`
        : e.message
    process.send?.({ type: 'error', message }, undefined, undefined, () => process.exit(1))
  })
  server.listen(o.port, o.host, () => {
    process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port })
  })
}

export interface RunningCluster {
  port: number
  /** Pids of the workers that started (replacements are logged as they come). */
  pids: number[]
  stop(): Promise<void>
}

/** Runs in the primary: forks the workers (re-forking any that die) and resolves when all listen. */
export function startCluster(o: ClusterOptions, script: string, args: string[]): Promise<RunningCluster> {
  // SCHED_NONE: the workers accept on the shared socket themselves. With node's default
  // round-robin the primary accepts and hands each connection to a worker over IPC; a
  // worker killed with connections still in its IPC pipe leaves those clients
  // unanswered, never closed (seen under kill -9 load tests). The kernel's accept queue
  // loses nothing: a connection waits until a live worker accepts it.
  cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ exec: script, args })
  let stopping = false
  let listening = 0
  const workers = new Set<Worker>()
  return new Promise((resolve, reject) => {
    const fork = (): Worker => {
      const w = cluster.fork({ PERSIST_DEMO_WORKER: '1' })
      workers.add(w)
      w.on('message', (m: { type?: string; port?: number; message?: string }) => {
        if (m?.type === 'error') {
          stopping = true
          for (const other of workers) other.process.kill('SIGTERM')
          return reject(new Error(m.message))
        }
        if (m?.type !== 'listening' || ++listening !== o.workers) return
        resolve({ port: m.port!, pids: [...workers].map((x) => x.process.pid!), stop })
      })
      w.on('exit', (code, signal) => {
        workers.delete(w)
        if (stopping) return
        process.stderr.write(`demo: worker ${w.process.pid} exited (${code ?? signal}); starting another\n`)
        if (listening < o.workers) return reject(new Error('a worker died while starting; see the log above'))
        const next = fork()
        next.once('listening', () => process.stderr.write(`demo: worker ${next.process.pid} started\n`))
      })
      return w
    }
    const stop = () => {
      stopping = true
      return new Promise<void>((done) => {
        if (workers.size === 0) return done()
        let left = workers.size
        for (const w of workers) {
          w.once('exit', () => --left === 0 && done())
          w.process.kill('SIGTERM')
        }
      })
    }
    for (let i = 0; i < o.workers; i++) fork()
  })
}
