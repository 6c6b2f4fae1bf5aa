/** Small node:http helpers shared by the built-in gateway and the cluster server. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type DemoResponse, errorPage, MAX_BODY_BYTES, STATUS_TEXT } from './pages.js'

export class BodyTooLarge extends Error {}

/** Reads the whole request body, refusing more than `limit` bytes (chunked bodies included). */
export function readRequestBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > limit) {
      reject(new BodyTooLarge())
      req.resume()
      return
    }
    const chunks: Buffer[] = []
    let got = 0
    req.on('data', (chunk: Buffer) => {
      got += chunk.length
      if (got > limit) {
        reject(new BodyTooLarge())
        req.resume()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export function sendResponse(res: ServerResponse, r: DemoResponse): void {
  const body = Buffer.from(r.body, 'utf8')
  res.writeHead(r.status, STATUS_TEXT[r.status], { ...r.headers, 'Content-Length': String(body.length) })
  res.end(body)
}

export function tooLarge(): DemoResponse {
  return errorPage(413, [`Request bodies are limited to ${MAX_BODY_BYTES} bytes.`])
}

export function notFound(path: string): DemoResponse {
  return errorPage(404, [`There is no page at ${path}: try /counter or /people.`])
}

/** Splits "/people?x=1" into path and query string. */
export function splitUrl(url: string | undefined): { path: string; query: string } {
  const raw = url ?? '/'
  const q = raw.indexOf('?')
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) }
}
