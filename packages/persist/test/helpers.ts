import { fileURLToPath } from 'node:url'
import { nodeRunner } from '../../../test/node-helpers.js'

export { tempDir } from '../../../test/node-helpers.js'

export const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url))

/** Runs `node fixtures/<script> ...args`, resolves with stdout, rejects on a non-zero exit. */
export const runNode = nodeRunner(fixtures)
