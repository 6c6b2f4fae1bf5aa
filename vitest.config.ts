import { defineConfig } from 'vitest/config'

// One config for the whole workspace. Tests import packages by name, so they run
// against the built dist/ and the compiled native addons (`pnpm build` first).
// pool 'forks': every test file gets its own process — mmap, robust mutexes and
// child-process harnesses must not share a process with unrelated tests.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
})
