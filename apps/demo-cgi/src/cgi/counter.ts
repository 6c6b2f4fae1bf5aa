#!/usr/bin/env node
// CGI program: the visitor counter. Run by the web server once per request.
import { counterPage } from '../pages.js'
import { runCgi } from './run.js'

await runCgi(counterPage)
