#!/usr/bin/env node
// CGI program: the visitor counter. Run by the web server once per request.
import { cgiMain } from './main.js'

await cgiMain('/counter')
