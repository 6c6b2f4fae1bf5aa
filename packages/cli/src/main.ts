/**
 * The `persist` command: commander program, one action per command, and the single
 * place that turns errors into `persist: <message> (<code>)` plus an exit code
 * (errors.ts EXIT, README.md "Exit codes").
 */
import { closeSync, openSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import type { Objects } from '@persist/objects'
import { isPersistError, PersistError } from '@persist/pager'
import { Command, CommanderError, Option } from 'commander'
import { inTxn, openObjects, resolvePath } from './access.js'
import { compact } from './compact.js'
import { Dumper, entryCount } from './dump.js'
import { EXIT, OPEN_CODES } from './errors.js'
import { load } from './load.js'
import { EpipeError, Out } from './out.js'
import { parsePath } from './path.js'
import { Progress } from './progress.js'
import { formatStats } from './stats.js'
import { Watcher } from './watch.js'

const require = createRequire(import.meta.url)
const VERSION: string = (require('../package.json') as { version: string }).version

/** Where the CLI writes; replaceable for tests of run(). */
export interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
}

const defaultIo: Io = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}

/** A failure that already printed its message and only needs an exit code. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max)
      throw new PersistError(
        'PERSIST_INVALID',
        `${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`,
      )
    return n
  }
}

interface Globals {
  lockTimeout?: number
}

function openFor(file: string, g: Globals, what: 'read' | 'write'): Objects {
  try {
    return openObjects(resolve(file), { lockTimeoutMs: g.lockTimeout, create: false })
  } catch (e) {
    if (isPersistError(e)) (e as PersistError & { phase?: string }).phase = 'open'
    if (isPersistError(e, 'PERSIST_NOT_FOUND') && what === 'read')
      e.message = `${file} does not exist (${e.message})`
    throw e
  }
}

function withStore<R>(file: string, g: Globals, fn: (o: Objects) => R): R {
  const o = openFor(file, g, 'read')
  try {
    return fn(o)
  } finally {
    try {
      if (o.inTransaction) o.abort()
    } catch {}
    o.close()
  }
}

/** Builds the commander program; actions resolve when the command is done. */
export function buildProgram(io: Io = defaultIo): Command {
  const program = new Command()
  program
    .name('persist')
    .description('Inspect and maintain persist stores (memory-mapped persistent object stores).')
    .version(VERSION, '-V, --version', 'print the version of @persist/cli')
    .option(
      '--lock-timeout <ms>',
      'how long to wait for the store lock held by another process',
      intOption('--lock-timeout', 0, 3_600_000),
    )
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      // commander's usage errors ("error: missing required argument 'file'") in the
      // CLI's one-line form
      outputError: (s, write) =>
        write(`persist: ${s.replace(/^error: /, '').trim()}; see \`persist --help\` (PERSIST_INVALID)\n`),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 success · 1 check found problems · 2 usage error or the store could not be opened · 3 the command failed.
Errors print one line: persist: <message> (<code>).
PATH examples: people.joe   items[3]   people["a b"].tags   $ (the root)`,
    )

  const g = () => program.opts<Globals>()

  program
    .command('stats')
    .description('print page, heap and object statistics of a store')
    .argument('<file>', 'the store file')
    .option('--json', 'print the statistics as one JSON object')
    .action((file: string, opts: { json?: boolean }) => {
      const st = withStore(file, g(), (o) => inTxn(o, () => ({ pager: o.pager.stats(), ...o.stats() })))
      const full = { file: resolve(file), fileBytes: statSync(file).size, ...st }
      io.stdout(opts.json ? `${JSON.stringify(full, null, 2)}\n` : formatStats(full))
    })

  program
    .command('check')
    .description('verify a store (pager, heap and object graph); exit 0 clean, 1 problems, 2 cannot open')
    .argument('<file>', 'the store file')
    .option('--json', 'print {"ok": bool, "problems": [...], "garbage": {objects, blocks, bytes}}')
    .action((file: string, opts: { json?: boolean }) => {
      let problems: string[]
      // unreachable cycles awaiting gc(): normal state, reported apart from problems
      let garbage = { objects: 0, blocks: 0, bytes: 0 }
      try {
        ;({ problems, garbage } = withStore(file, g(), (o) => inTxn(o, () => o.audit())))
      } catch (e) {
        if (isPersistError(e, 'PERSIST_CORRUPT')) problems = [`${e.message} (${e.code})`]
        else throw e
      }
      if (opts.json) io.stdout(`${JSON.stringify({ ok: problems.length === 0, problems, garbage })}\n`)
      else if (problems.length === 0) {
        io.stdout(`ok: ${file} is consistent\n`)
        if (garbage.objects > 0)
          io.stdout(
            `note: ${garbage.objects} unreachable object(s) (${garbage.bytes} bytes) await \`persist gc ${file}\` (cycles are collected only by gc)\n`,
          )
      } else {
        for (const p of problems) io.stdout(`problem: ${p}\n`)
        io.stderr(`persist: ${file}: ${problems.length} problem(s) found (PERSIST_CORRUPT)\n`)
      }
      if (problems.length > 0) throw new Exit(EXIT.PROBLEMS)
    })

  program
    .command('dump')
    .description('write the store (or the value at PATH) as JSON, streamed while walking it')
    .argument('<file>', 'the store file')
    .argument('[path]', 'a sub-path such as people.joe or items[3] (default: the root)')
    .option('--ndjson', 'one line per top-level entry: {"key": …, "value": …}')
    .addOption(
      new Option('--indent <n>', 'indent JSON by n spaces (0 = compact)')
        .argParser(intOption('--indent', 0, 10))
        .default(0),
    )
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(
      (
        file: string,
        path: string | undefined,
        opts: { ndjson?: boolean; indent: number; output?: string },
      ) => {
        const segs = parsePath(path ?? '$')
        withStore(file, g(), (o) => {
          const fd = opts.output ? openSync(opts.output, 'w', 0o644) : 1
          const out = new Out(fd)
          try {
            o.begin() // one read transaction: a consistent snapshot (writers wait; see README)
            const v = resolvePath(o, segs)
            const progress = new Progress('dump', entryCount(o, v), 'entries')
            const dumper = new Dumper(o, out, {
              format: opts.ndjson ? 'ndjson' : 'json',
              indent: opts.indent,
              onEntry: (n) => progress.tick(n),
            })
            try {
              dumper.dump(v)
            } finally {
              progress.stop()
            }
            o.commit()
          } catch (e) {
            if (e instanceof EpipeError) return // the reader went away (dump | head): not an error
            throw walkError(e, file)
          } finally {
            if (fd !== 1) closeSync(fd)
          }
        })
      },
    )

  program
    .command('load')
    .description('read JSON (as written by dump) from stdin into the root dict or the dict/list at --path')
    .argument('<file>', 'the store file (created if missing)')
    .option(
      '--path <path>',
      'load into this dict (keys are set) or list (items appended); created if missing',
    )
    .option('--ndjson', 'the input is NDJSON lines {"key": …, "value": …} as written by dump --ndjson')
    .addOption(
      new Option('--batch <n>', 'top-level entries per transaction')
        .argParser(intOption('--batch', 1, 10_000_000))
        .default(1000),
    )
    .option(
      '--atomic',
      'one transaction for the whole input: all or nothing (holds the store lock while reading)',
    )
    .option('--no-create', 'fail if the store does not exist')
    .action(
      async (
        file: string,
        opts: { path?: string; ndjson?: boolean; batch: number; atomic?: boolean; create: boolean },
      ) => {
        const segs = parsePath(opts.path ?? '$')
        let o: Objects
        try {
          o = openObjects(resolve(file), { lockTimeoutMs: g().lockTimeout, create: opts.create })
        } catch (e) {
          if (isPersistError(e)) (e as PersistError & { phase?: string }).phase = 'open'
          throw e
        }
        let total = 0
        try {
          const st = statSync('/dev/stdin')
          if (st.isFile()) total = st.size
        } catch {}
        const progress = new Progress('load', total, 'bytes')
        try {
          if (process.stdin.isTTY)
            io.stderr(
              'persist: reading JSON from the terminal; end it with Ctrl-D (or redirect: persist load FILE < data.json)\n',
            )
          const r = await load(o, process.stdin, {
            segs,
            ndjson: !!opts.ndjson,
            batch: opts.batch,
            atomic: !!opts.atomic,
            progress,
          })
          progress.stop()
          io.stderr(
            `loaded ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'} into ${r.target} of ${file} in ${r.transactions} transaction(s)\n`,
          )
        } finally {
          progress.stop()
          try {
            if (o.inTransaction) o.abort()
          } catch {}
          o.close()
        }
      },
    )

  program
    .command('compact')
    .description(
      'rewrite the store with only its live data and replace the file atomically (refuses while the store is open elsewhere)',
    )
    .argument('<file>', 'the store file')
    .action((file: string) => {
      const abs = resolve(file)
      try {
        statSync(abs)
      } catch {
        throw Object.assign(new PersistError('PERSIST_NOT_FOUND', `${file} does not exist`), {
          phase: 'open',
        })
      }
      const progress = new Progress('compact', 0, 'entries')
      try {
        let r: ReturnType<typeof compact>
        try {
          r = compact(abs, progress, g().lockTimeout)
        } catch (e) {
          throw walkError(e, file)
        }
        progress.stop()
        io.stdout(
          `compacted ${file}: ${fmtBytes(r.before)} → ${fmtBytes(r.after)} (${r.entries} root entries)\n`,
        )
      } finally {
        progress.stop()
      }
    })

  program
    .command('gc')
    .description('collect unreachable records (cycles) and report what was freed')
    .argument('<file>', 'the store file')
    .action((file: string) => {
      const r = withStore(file, g(), (o) => inTxn(o, () => o.gc()))
      io.stdout(`gc ${file}: freed ${r.freedObjects} object(s), ${fmtBytes(r.freedBytes)}\n`)
    })

  program
    .command('watch')
    .description('print a line for every committed change of the value at PATH, until Ctrl-C')
    .argument('<file>', 'the store file')
    .argument('[path]', 'the sub-tree to watch (default: the root)')
    .addOption(
      new Option('--interval <ms>', 'poll interval')
        .argParser(intOption('--interval', 1, 60_000))
        .default(50),
    )
    .action(async (file: string, path: string | undefined, opts: { interval: number }) => {
      const segs = parsePath(path ?? '$')
      const o = openFor(file, g(), 'read')
      const w = new Watcher(o, segs, (line) => io.stdout(`${line}\n`))
      await new Promise<void>((done) => {
        const stop = () => {
          w.stop()
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
          done()
        }
        process.on('SIGINT', stop)
        process.on('SIGTERM', stop)
        try {
          w.start(opts.interval)
        } catch (e) {
          stop()
          throw e
        }
      }).finally(() => o.close())
    })

  return program
}

/**
 * A walk that met bytes it cannot follow (an offset outside the mapping, a bad tag) or
 * nesting deeper than the JS stack: say what it means for the user.
 */
function walkError(e: unknown, file: string): unknown {
  if (e instanceof RangeError && /call stack/i.test(e.message))
    return new PersistError(
      'PERSIST_UNSUPPORTED',
      `the value is nested too deeply to walk (${e.message}); dump a deeper PATH instead, or raise the stack with node --stack-size`,
    )
  if (
    (isPersistError(e, 'PERSIST_INVALID') && /outside the store/.test(e.message)) ||
    isPersistError(e, 'PERSIST_CORRUPT') ||
    e instanceof RangeError
  )
    return new PersistError(
      'PERSIST_CORRUPT',
      // the objects layer's own advice ("; the store is damaged: run …") is replaced by one naming the file
      `${(e as Error).message.replace(/; the store is damaged: .*$/s, '')} — the store looks damaged; run \`persist check ${file}\` (any output written so far is incomplete)`,
    )
  return e
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

/**
 * Runs the CLI with `argv` (as process.argv: node, script, args…) and resolves with
 * the exit code. Never throws and never calls process.exit.
 */
export async function run(argv: string[], io: Io = defaultIo): Promise<number> {
  const program = buildProgram(io)
  try {
    await program.parseAsync(argv)
    return EXIT.OK
  } catch (e) {
    return report(e, io)
  }
}

function report(e: unknown, io: Io): number {
  if (e instanceof Exit) return e.code
  if (e instanceof CommanderError) {
    if (e.exitCode === 0) return EXIT.OK // --help, --version
    // commander already printed "error: …" and the help hint.
    return EXIT.USAGE
  }
  if (isPersistError(e)) {
    io.stderr(`persist: ${e.message} (${e.code})\n`)
    const phase = (e as PersistError & { phase?: string }).phase
    if (e.code === 'PERSIST_INVALID' && phase === undefined && /bad PATH|must be an integer/.test(e.message))
      return EXIT.USAGE
    if (phase === 'open' && OPEN_CODES.has(e.code)) return EXIT.USAGE
    return EXIT.FAILED
  }
  if (e instanceof TypeError || e instanceof RangeError) {
    io.stderr(`persist: ${e.message} (PERSIST_INVALID)\n`)
    return EXIT.FAILED
  }
  const err = e as Error
  io.stderr(`persist: unexpected error: ${err?.message ?? String(e)} (PERSIST_NATIVE)\n`)
  if (process.env.PERSIST_DEBUG) io.stderr(`${err?.stack ?? ''}\n`)
  return EXIT.FAILED
}
