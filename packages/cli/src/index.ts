/**
 * @persist/cli — the `persist` command as a library: run it in-process (tests,
 * tools), or reuse its PATH syntax. The executable is `persist` (dist/cli.js).
 */
export { EXIT } from './errors.js'
export { buildProgram, type Io, run } from './main.js'
export { formatPath, joinPath, type PathSegment, parsePath } from './path.js'
