/**
 * Runs one page as a CGI program (RFC 3875): request meta-variables from the
 * environment, the body from stdin (exactly CONTENT_LENGTH bytes, §4.2), and the
 * response on stdout as CGI header fields (`Status:`, `Content-Type:`, `Location:`),
 * a blank line, then the document.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { open } from '../backend.js'
import {
  type DemoRequest,
  type DemoResponse,
  errorPage,
  failurePage,
  MAX_BODY_BYTES,
  type Page,
  STATUS_TEXT,
} from '../pages.js'
import { storePath } from '../store-path.js'

/** How long a CGI process waits for the store's writer lock before answering 503 (ms). */
const LOCK_TIMEOUT_MS = 10_000

/** Reads exactly `length` bytes of stdin; the server need not send EOF after the body (RFC 3875 §4.2). */
async function readBody(length: number): Promise<Buffer> {
  if (length === 0) return Buffer.alloc(0)
  const chunks: Buffer[] = []
  let got = 0
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer)
    got += (chunk as Buffer).length
    if (got >= length) break
  }
  return Buffer.concat(chunks).subarray(0, length)
}

/** Serialises a response as CGI output; header values are ours, never user input. */
export function formatCgiResponse(res: DemoResponse, head = false): Buffer {
  const lines = [`Status: ${res.status} ${STATUS_TEXT[res.status] ?? ''}`.trimEnd()]
  for (const [k, v] of Object.entries(res.headers)) lines.push(`${k}: ${v}`)
  const header = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  return head ? header : Buffer.concat([header, Buffer.from(res.body, 'utf8')])
}

async function handle(page: Page, env: NodeJS.ProcessEnv): Promise<DemoResponse> {
  const method = (env.REQUEST_METHOD ?? 'GET').toUpperCase()
  const lengthText = env.CONTENT_LENGTH ?? ''
  const length = lengthText === '' ? 0 : Number(lengthText)
  if (!Number.isSafeInteger(length) || length < 0)
    return errorPage(400, [`Bad CONTENT_LENGTH "${lengthText}".`])
  if (length > MAX_BODY_BYTES)
    return errorPage(413, [`Request bodies are limited to ${MAX_BODY_BYTES} bytes.`])
  const body = await readBody(length)
  const req: DemoRequest = {
    method,
    path: env.SCRIPT_NAME ?? '',
    query: env.QUERY_STRING ?? '',
    contentType: env.CONTENT_TYPE ?? '',
    body,
  }
  try {
    const path = storePath(env)
    mkdirSync(dirname(path), { recursive: true })
    // From here to the end of the page everything is synchronous: one JS turn.
    const store = open(path, { lockTimeoutMs: LOCK_TIMEOUT_MS })
    try {
      return page(store, req)
    } finally {
      store.close()
    }
  } catch (e) {
    process.stderr.write(`demo-cgi: ${req.method} ${req.path}: ${(e as Error)?.stack ?? e}\n`)
    return failurePage(e)
  }
}

/** Entry point of a CGI program; resolves when stdout has been handed the whole response. */
export async function runCgi(page: Page): Promise<void> {
  const res = await handle(page, process.env)
  const out = formatCgiResponse(res, (process.env.REQUEST_METHOD ?? '').toUpperCase() === 'HEAD')
  await new Promise<void>((resolve, reject) =>
    process.stdout.write(out, (err) => (err ? reject(err) : resolve())),
  )
}
