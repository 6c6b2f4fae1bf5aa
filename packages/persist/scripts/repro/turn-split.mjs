#!/usr/bin/env node
// Repro (found by the reliability campaign): store.stats() / check() / gc() /
// transaction() called INSIDE a turn commits the turn so far and releases the lock, so
// the rest of the turn is a separate transaction. Two processes doing
//   const v = root.x; store.stats(); root.x = v + 1
// lose updates. Expected 4001; prints what it got. Exit 1 when updates were lost.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { open } from '@persist/persist'

if (process.argv[2] === '--child') {
  const s = open(process.argv[3])
  for (let i = 0; i < 2000; i++) {
    const v = s.root.x ?? 0
    s.stats() // any store.transaction() here has the same effect
    s.root.x = v + 1
    await null
  }
  s.close()
} else {
  const dir = mkdtempSync(join(tmpdir(), 'repro-'))
  const file = join(dir, 't.persist')
  const s = open(file)
  s.root.x = 1
  await null
  const self = fileURLToPath(import.meta.url)
  const { spawn } = await import('node:child_process')
  await Promise.all(
    [0, 1].map(
      () =>
        new Promise((r) =>
          spawn(process.execPath, [self, '--child', file], { stdio: 'inherit' }).on('close', r),
        ),
    ),
  )
  const x = s.root.x
  s.close()
  rmSync(dir, { recursive: true, force: true })
  console.log(`root.x = ${x} (expected 4001)`)
  process.exitCode = x === 4001 ? 0 : 1
  void spawnSync
}
