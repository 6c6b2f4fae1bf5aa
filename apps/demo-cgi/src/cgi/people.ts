#!/usr/bin/env node
// CGI program: the people page (list, add, birthday). Run by the web server once per request.
import { cgiMain } from './main.js'

await cgiMain('/people')
