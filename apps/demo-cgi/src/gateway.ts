/**
 * A small built-in CGI gateway (RFC 3875), used when lighttpd is not installed:
 * node:http receives the request, spawns the page's CGI program with the request
 * meta-variables in its environment and the body on stdin, and turns the program's
 * header fields into the HTTP response (`Status:` → status code, `Location:` without
 * `Status:` → 302, §6.2.3–6.3.3).
 */
import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { BodyTooLarge, notFound, readRequestBody, sendResponse, splitUrl, tooLarge } from './http-util.js'
import { type DemoResponse, errorPage, indexPage, PAGES } from './pages.js'

/** A CGI program that has not answered after this long is killed and the client gets 504 (ms). */
const CGI_TIMEOUT_MS = 30_000
/** Largest CGI output accepted (bytes); our pages are a few KiB. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024

export interface GatewayOptions {
  host: string
  port: number
  /** Directory holding counter.js and people.js. */
  cgiDir: string
  /** Extra environment for every CGI program (PERSIST_PATH, PATH, …). */
  env: Record<string, string>
}

/** Finds the page for a URL path: "/people" or "/people/extra" (PATH_INFO "/extra"). */
function route(path: string): { scriptName: string; pathInfo: string; script: string } | undefined {
  for (const [scriptName, { script }] of Object.entries(PAGES)) {
    if (path === scriptName || path.startsWith(`${scriptName}/`)) {
      return { scriptName, pathInfo: path.slice(scriptName.length), script }
    }
  }
  return undefined
}

/** The request meta-variables of RFC 3875 §4.1, plus HTTP_* for the other headers. */
export function cgiEnvironment(
  req: IncomingMessage,
  r: { scriptName: string; pathInfo: string; query: string; bodyLength: number },
  server: { name: string; port: number },
): Record<string, string> {
  const env: Record<string, string> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: 'persist-demo-gateway',
    SERVER_NAME: server.name,
    SERVER_PORT: String(server.port),
    REQUEST_METHOD: req.method ?? 'GET',
    SCRIPT_NAME: r.scriptName,
    PATH_INFO: r.pathInfo,
    QUERY_STRING: r.query,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    REMOTE_PORT: String(req.socket.remotePort ?? ''),
  }
  if (r.bodyLength > 0 || req.headers['content-length'] !== undefined)
    env.CONTENT_LENGTH = String(r.bodyLength)
  if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type']
  for (const [name, value] of Object.entries(req.headers)) {
    // Content-Length/Type are above; "Proxy" is dropped (httpoxy: it would become HTTP_PROXY).
    if (name === 'content-length' || name === 'content-type' || name === 'proxy' || value === undefined)
      continue
    env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = Array.isArray(value) ? value.join(', ') : value
  }
  return env
}

/** Parses a CGI program's output (header fields, blank line, body) into a response. */
export function parseCgiOutput(out: Buffer): DemoResponse | undefined {
  let end = -1
  let sep = 0
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== 0x0a) continue
    if (out[i + 1] === 0x0a) {
      end = i
      sep = 2
      break
    }
    if (out[i + 1] === 0x0d && out[i + 2] === 0x0a) {
      end = i
      sep = 3
      break
    }
  }
  if (end < 0) return undefined
  const headers: Record<string, string> = {}
  let status: number | undefined
  for (const line of out.subarray(0, end).toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon <= 0) return undefined
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (name.toLowerCase() === 'status') {
      status = Number.parseInt(value, 10)
      if (!(status >= 100 && status <= 999)) return undefined
    } else headers[name] = value
  }
  const location = Object.keys(headers).find((k) => k.toLowerCase() === 'location')
  if (status === undefined) status = location ? 302 : 200
  if (!location && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) return undefined
  return { status, headers, body: out.subarray(end + sep).toString('utf8') }
}

function runCgi(script: string, env: Record<string, string>, body: Buffer): Promise<DemoResponse> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let outBytes = 0
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, CGI_TIMEOUT_MS)
    child.stdout.on('data', (c: Buffer) => {
      outBytes += c.length
      if (outBytes > MAX_OUTPUT_BYTES) child.kill('SIGKILL')
      else out.push(c)
    })
    child.stderr.on('data', (c: Buffer) => process.stderr.write(c))
    child.stdin.on('error', () => {}) // the program may exit without reading its body
    child.stdin.end(body)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve(errorPage(502, [`Could not start the CGI program: ${err.message}`]))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (timedOut)
        return resolve(errorPage(502, [`The CGI program did not answer within ${CGI_TIMEOUT_MS} ms.`]))
      const parsed = parseCgiOutput(Buffer.concat(out))
      if (parsed) return resolve(parsed)
      resolve(errorPage(502, [`The CGI program sent no valid CGI response (exit ${code ?? signal}).`]))
    })
  })
}

/** Starts the gateway; resolves once it is listening. */
export function startGateway(opts: GatewayOptions): Promise<Server> {
  const server = createServer(async (req, res) => {
    const { path, query } = splitUrl(req.url)
    try {
      if (path === '/' || path === '/index.html') return sendResponse(res, indexPage())
      const r = route(path)
      if (!r) return sendResponse(res, notFound(path))
      const body = await readRequestBody(req)
      const port = (server.address() as AddressInfo).port
      const env = {
        ...opts.env,
        ...cgiEnvironment(req, { ...r, query, bodyLength: body.length }, { name: opts.host, port }),
      }
      const out = await runCgi(join(opts.cgiDir, r.script), env, body)
      sendResponse(res, out)
    } catch (e) {
      if (e instanceof BodyTooLarge) return sendResponse(res, tooLarge())
      process.stderr.write(`demo gateway: ${(e as Error)?.stack ?? e}\n`)
      if (!res.headersSent) sendResponse(res, errorPage(500, ['The gateway failed; see its log.']))
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}
