/** HTML helpers: escaping and the page layout with its inline stylesheet. */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Escapes text for use in element content and in quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c])
}

/** Inline so every mode (lighttpd, gateway, cluster) serves the same page with no static files. */
export const STYLESHEET = `
:root { color-scheme: light; --ink: #1f2933; --muted: #61707f; --line: #d9e0e7; --accent: #2f6fdd; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); }
header nav { max-width: 44rem; margin: 0 auto; padding: .8rem 1.25rem; display: flex; gap: 1.25rem; align-items: baseline; }
header .brand { font-weight: 700; margin-right: auto; }
header a { color: var(--ink); text-decoration: none; }
header a[aria-current="page"] { color: var(--accent); font-weight: 600; }
main { max-width: 44rem; margin: 2rem auto; padding: 0 1.25rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1.5rem 1.75rem; margin-bottom: 1.5rem;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .05); }
h1 { font-size: 1.6rem; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
.big { font-size: 2.4rem; font-weight: 700; color: var(--accent); }
.muted { color: var(--muted); font-size: .9rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .55rem .5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
td.num { font-variant-numeric: tabular-nums; }
form.inline { margin: 0; }
form.add { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .25rem; }
input { font: inherit; padding: .45rem .6rem; border: 1px solid var(--line); border-radius: 6px; min-width: 6rem; }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); padding: .25rem .7rem; font-size: .9rem; }
.error { border-color: #f3b8b2; background: #fff6f5; }
.error h1 { color: var(--bad); }
code { background: #eef2f6; padding: .1rem .3rem; border-radius: 4px; }
main a { color: var(--accent); }
`

export interface LayoutOptions {
  title: string
  /** Which nav entry is the current page. */
  current?: 'home' | 'counter' | 'people'
  body: string
}

/** A complete HTML document; `body` must already be escaped. */
export function layout({ title, current, body }: LayoutOptions): string {
  const link = (href: string, name: LayoutOptions['current'], text: string): string =>
    `<a href="${href}"${current === name ? ' aria-current="page"' : ''}>${text}</a>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · persist demo</title>
<link rel="icon" href="data:,">
<style>${STYLESHEET}</style>
</head>
<body>
<header><nav>${link('/', 'home', '<span class="brand">persist demo</span>')}${link('/counter', 'counter', 'Counter')}${link('/people', 'people', 'People')}</nav></header>
<main>
${body}
</main>
</body>
</html>
`
}
