// Test helpers shared by the packages' vitest files (imported by relative path; not
// part of any published package).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh temp dir; returns a path maker and a cleanup. */
export function tempDir(prefix = 'persist-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    file: (name = 'store.persist') => join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/**
 * A runner of `node <fixtures>/<script> ...args` that resolves with stdout and
 * rejects (with stderr) on a non-zero exit or a signal.
 */
export function nodeRunner(fixtures: string) {
  return (script: string, args: string[], env: Record<string, string> = {}): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [join(fixtures, script), ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      let err = ''
      p.stdout.on('data', (d) => (out += d))
      p.stderr.on('data', (d) => (err += d))
      p.on('close', (code, signal) => {
        if (code === 0) resolve(out)
        else reject(new Error(`${script} exited with ${code ?? signal}: ${err}`))
      })
    })
}
