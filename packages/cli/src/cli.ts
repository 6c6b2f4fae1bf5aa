#!/usr/bin/env node
/** The `persist` executable: runs the CLI on process.argv and exits with its code. */
import { run } from './main.js'

run(process.argv).then(
  (code) => {
    process.exitCode = code
  },
  (e) => {
    process.stderr.write(`persist: unexpected error: ${(e as Error)?.message ?? e} (PERSIST_NATIVE)\n`)
    process.exitCode = 3
  },
)
