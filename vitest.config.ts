import { defineConfig } from 'vitest/config'

// One config for the whole workspace. Tests import packages by name, so they run
// against the built dist/ and the compiled native addons (`pnpm build` first).
// pool 'forks': every test file gets its own process — mmap, robust mutexes and
// child-process harnesses must not share a process with unrelated tests.
// The tests spawn hundreds of Node processes (crash, kill -9, multi-process harnesses)
// and none of them opens a TLS connection. With NODE_EXTRA_CA_CERTS set, every Node
// process parses that certificate bundle at start-up (here: 143 instead of 47 ms of
// CPU for `node -e 0`), so the test workers and their children run without it.
delete process.env.NODE_EXTRA_CA_CERTS

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
})
