/**
 * A synchronous, bounded output buffer over a file descriptor. The dump walks the
 * store inside one transaction (synchronous code), so it cannot await 'drain':
 * it writes with fs.writeSync in chunks of CHUNK bytes, and when the descriptor is
 * non-blocking and full (EAGAIN) it sleeps 1 ms and retries. Memory stays at one
 * chunk however large the output is.
 */
import { writeSync } from 'node:fs'

const CHUNK = 64 * 1024 // characters buffered before a write (≈ bytes for ASCII output)
const sleeper = new Int32Array(new SharedArrayBuffer(4))

export class Out {
  private parts: string[] = []
  private size = 0
  /** Characters written so far (for progress and tests). */
  written = 0

  /** fd: a file descriptor to write to, or a function receiving each chunk (hashing, tests). */
  constructor(private readonly fd: number | ((chunk: string) => void)) {}

  write(s: string): void {
    this.parts.push(s)
    this.size += s.length
    if (this.size >= CHUNK) this.flush()
  }

  flush(): void {
    if (this.size === 0) return
    if (typeof this.fd === 'function') {
      this.fd(this.parts.join(''))
      this.parts = []
      this.written += this.size
      this.size = 0
      return
    }
    const buf = Buffer.from(this.parts.join(''), 'utf8')
    this.parts = []
    this.written += this.size
    this.size = 0
    let off = 0
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, 1)
          continue
        }
        if (code === 'EPIPE') throw new EpipeError()
        throw e
      }
    }
  }
}

/** The reader of our output went away (`persist dump | head`): stop quietly. */
export class EpipeError extends Error {
  constructor() {
    super('output closed')
  }
}
