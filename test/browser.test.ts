// End to end in a real browser: headless Chromium fills the example app's upload form (a text field and
// two files), submits it as multipart/form-data, and reads the page the Lua route answers with.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { buildServer } from '../src/cli/server.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CHROMIUM = process.env.EVLUA_CHROMIUM ?? '/usr/bin/chromium'

/** What the page's checksum is: the sum of the bytes modulo 2^32. */
const checksum = (b: Buffer): number => b.reduce((sum, x) => (sum + x) % 4294967296, 0)

test('the example app\'s upload form, driven by headless Chromium', { skip: !existsSync(CHROMIUM) && process.env.CI === undefined && `no Chromium at ${CHROMIUM} (apt-get install chromium)` }, async (t) => {
  const { app } = await buildServer({ dir: ROOT, config: { log: { level: 'silent' } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const profile = await mkdtemp(join(tmpdir(), 'evlua-chromium-'))
  // the browser closes before the server: a connection Chromium opened ahead of time and never used
  // would otherwise hold the server's close until Node's headers timeout
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run']
  }).catch(async (err: unknown) => { await app.close(); throw err })
  t.after(async () => {
    await browser.close()
    await app.close()
    await rm(profile, { recursive: true, force: true })
  })
  const page = await browser.newPage()

  await page.goto(`${base}/form`)
  assert.equal(await page.title(), 'Upload form')
  // the stylesheet came from public/ (a static file)
  assert.equal(await page.locator('h1').evaluate((el) => getComputedStyle(el).color), 'rgb(20, 90, 160)')

  const notes = Buffer.from('first file\nwith two lines ✓\n')
  const picture = randomBytes(300_000)
  const title = 'Hello <b>world</b> & ✓'
  await page.fill('input[name=title]', title)
  await page.setInputFiles('input[name=file1]', { name: 'notes.txt', mimeType: 'text/plain', buffer: notes })
  await page.setInputFiles('input[name=file2]', { name: 'picture.png', mimeType: 'image/png', buffer: picture })
  await Promise.all([page.waitForURL(`${base}/form`), page.click('button[type=submit]')])
  await page.waitForSelector('#received')

  assert.equal(await page.title(), 'Received')
  assert.equal(await page.locator('li[data-name=title] .value').textContent(), title, 'the title arrives and is shown escaped')
  const file = (name: string): Promise<string[]> => Promise.all(
    ['.file-name', '.type', '.size', '.sum'].map(async (sel) => (await page.locator(`li[data-name=${name}] ${sel}`).textContent()) ?? ''))
  assert.deepEqual(await file('file1'), ['notes.txt', 'text/plain', String(notes.length), String(checksum(notes))])
  assert.deepEqual(await file('file2'), ['picture.png', 'image/png', String(picture.length), String(checksum(picture))])

  // the same form with no files chosen
  await page.goto(`${base}/form`)
  await page.fill('input[name=title]', 'no files')
  await Promise.all([page.waitForURL(`${base}/form`), page.click('button[type=submit]')])
  await page.waitForSelector('#received')
  assert.equal(await page.locator('li[data-name=file1]').textContent(), 'no file')
  assert.equal(await page.locator('li[data-name=title] .value').textContent(), 'no files')
})
