/**
 * Starts a CGI program. Imports the pages (and with them the persist packages and
 * their native addons) dynamically, so that a failure to load them still produces a
 * CGI response — a plain 500 that says what failed — instead of a process that dies
 * without headers (which web servers turn into an anonymous 500).
 */
export async function cgiMain(path: '/counter' | '/people'): Promise<void> {
  let run: typeof import('./run.js')
  let pages: typeof import('../pages.js')
  try {
    run = await import('./run.js')
    pages = await import('../pages.js')
  } catch (e) {
    const message = (e as Error)?.message ?? String(e)
    process.stderr.write(`demo-cgi: cannot load the demo: ${(e as Error)?.stack ?? e}\n`)
    process.stdout.write(
      'Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
        `The demo could not load the persist packages: ${message}\n` +
        'Build the repository (pnpm build) and try again.\n',
    )
    return
  }
  await run.runCgi(pages.PAGES[path].page)
}
