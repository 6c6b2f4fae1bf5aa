// Makes the CGI programs directly executable (they start with "#!/usr/bin/env node").
import { chmodSync, readdirSync, readFileSync } from 'node:fs'

const dir = new URL('../dist/cgi/', import.meta.url)
for (const f of readdirSync(dir)) {
  if (f.endsWith('.js') && readFileSync(new URL(f, dir), 'utf8').startsWith('#!'))
    chmodSync(new URL(f, dir), 0o755)
}
