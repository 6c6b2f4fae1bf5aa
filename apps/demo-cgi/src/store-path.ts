import { fileURLToPath } from 'node:url'

/** apps/demo-cgi/data/demo.persist, resolved from this file (dist/store-path.js) so any cwd works. */
export const DEFAULT_STORE_PATH = fileURLToPath(new URL('../data/demo.persist', import.meta.url))

/** The store every mode uses: env PERSIST_PATH, else the app's data dir (gitignored). */
export function storePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.PERSIST_PATH || DEFAULT_STORE_PATH
}
