#!/usr/bin/env node
// CGI program: the people page (list, add, birthday). Run by the web server once per request.
import { peoplePage } from '../pages.js'
import { runCgi } from './run.js'

await runCgi(peoplePage)
