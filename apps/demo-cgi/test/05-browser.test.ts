// 5. A real browser (Chromium via playwright-core) against CGI under lighttpd.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ARTIFACTS, type Demo, requireExecutable, requireLighttpd, startDemo, tempStore } from './helpers.js'

const CHROMIUM = '/usr/bin/chromium'

describe('5. Chromium', () => {
  const store = tempStore()
  const profile = mkdtempSync(join(tmpdir(), 'persist-demo-chromium-'))
  let demo: Demo
  let browser: BrowserContext

  beforeAll(async () => {
    requireExecutable(CHROMIUM, 'apt-get install -y chromium')
    await requireLighttpd()
    mkdirSync(ARTIFACTS, { recursive: true })
    demo = await startDemo('lighttpd', store.path)
    // launchPersistentContext is playwright's way to pass a fresh --user-data-dir.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 900, height: 640 },
    })
  })
  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
    store.cleanup()
    rmSync(profile, { recursive: true, force: true })
  })

  function shot(name: string): string {
    const path = join(ARTIFACTS, name)
    rmSync(path, { force: true })
    return path
  }

  it('5.1 counter page shows "You are visitor N", N going up on reload', async () => {
    const page = await browser.newPage()
    await page.goto(`${demo.url}/counter`)
    await expect(page.title()).resolves.toBe('Visitor counter · persist demo')
    const text = await page.locator('p.visitor').innerText()
    expect(text).toBe('You are visitor 1 to visit this site!')
    await page.reload()
    expect(await page.locator('p.visitor').innerText()).toBe('You are visitor 2 to visit this site!')
    const path = shot('counter.png')
    await page.screenshot({ path, fullPage: true })
    expect(statSync(path).size).toBeGreaterThan(5_000)
    await page.close()
  })

  it('5.2 people page: list, add through the form (escaped name), birthday button, bad input page', async () => {
    const page = await browser.newPage()
    await page.goto(`${demo.url}/people`)
    const names = () => page.locator('td.name').allInnerTexts()
    const ages = () => page.locator('td.age').allInnerTexts()
    expect(await names()).toEqual(['Joe', 'John'])
    expect(await ages()).toEqual(['27', '29'])

    await page.fill('input[name=name]', 'Ada <script>alert(1)</script>')
    await page.fill('input[name=age]', '36')
    await Promise.all([page.waitForURL(`${demo.url}/people`), page.click('button:has-text("Add person")')])
    expect(await names()).toEqual(['Joe', 'John', 'Ada <script>alert(1)</script>'])
    expect(await ages()).toEqual(['27', '29', '36'])

    const adaRow = page.locator('tr', { hasText: 'Ada' })
    await Promise.all([page.waitForURL(`${demo.url}/people`), adaRow.locator('button').click()])
    expect(await ages()).toEqual(['27', '29', '37'])
    const path = shot('people.png')
    await page.screenshot({ path, fullPage: true })
    expect(statSync(path).size).toBeGreaterThan(5_000)

    await page.fill('input[name=name]', 'Tim')
    await page.fill('input[name=age]', '-4')
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.click('button:has-text("Add person")'),
    ])
    expect(response.status()).toBe(400)
    expect(await page.locator('h1').innerText()).toBe('400 Bad Request')
    expect(await page.locator('ul.reasons').innerText()).toBe('Age cannot be negative.')
    await page.screenshot({ path: shot('people-400.png'), fullPage: true })
    await page.close()
  })
})
