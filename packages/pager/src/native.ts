import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { PersistError } from './errors.js'

const require = createRequire(import.meta.url)

/**
 * Loads a compiled addon `<packageRoot>/build/Release/<name>.node` and turns a
 * missing or broken build into a PersistError that says what to run, instead of a
 * raw dlopen message. `expectAbi` guards against a stale build from older sources.
 */
export function loadNative<T extends { abiVersion?: number }>(
  packageRoot: string,
  name: string,
  expectAbi: number,
): T {
  const file = join(packageRoot, 'build', 'Release', `${name}.node`)
  if (!existsSync(file)) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon of @persist/${name} is not built (${file} is missing): run \`pnpm build\` in the repository (or \`npx cmake-js compile\` in ${packageRoot})`,
    )
  }
  let mod: T
  try {
    mod = require(file) as T
  } catch (e) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} failed to load (${(e as Error).message}); rebuild it with \`pnpm build\``,
      { cause: e },
    )
  }
  if (mod.abiVersion !== expectAbi) {
    throw new PersistError(
      'PERSIST_NATIVE',
      `the native addon ${file} is stale (binding version ${mod.abiVersion}, expected ${expectAbi}); rebuild it with \`pnpm build\``,
    )
  }
  return mod
}
