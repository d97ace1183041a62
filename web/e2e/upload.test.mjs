// The page in headless Chromium (Debian's package, driven by playwright-core;
// no browser download), against a running Sluice at SLUICE_API_URL:
// sign up, drop a 30 MiB image and a spoofed PDF, reload in the middle of
// the image's upload, and see it resume from the parts S3 already holds,
// then end UPLOADED (IMAGE) while the spoof ends FAILED with its reason;
// then sign out while a third file is in flight: it is aborted, the session
// is gone, and the next user on the browser is offered none of the files.
// Exits non-zero on any failed expectation; saves a screenshot of the
// finished page to SLUICE_ARTIFACTS.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes, randomUUID } from 'node:crypto'
import { chromium } from 'playwright-core'

const api = process.env.SLUICE_API_URL
const artifacts = process.env.SLUICE_ARTIFACTS ?? 'e2e-artifacts'
if (!api) throw new Error('set SLUICE_API_URL to a running Sluice API (make test does)')
const MiB = 1024 * 1024

function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`)
}

// The files a user drops: a structurally valid PNG (IHDR, 1 MiB IDAT chunks
// of random pixels with their CRCs, IEND), and an executable named .pdf.
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
function crc32(bytes) {
  let c = 0xffffffff
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
function chunk(type, data) {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}
function pngOf(size) {
  const ihdr = Buffer.from('000000400000003008060000 00'.replace(/ /g, ''), 'hex')
  const parts = [Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr)]
  let left = size - 8 - 25 - 12
  while (left > 12) {
    const len = Math.min(MiB, left - 12)
    parts.push(chunk('IDAT', randomBytes(len)))
    left -= len + 12
  }
  parts.push(chunk('IEND', Buffer.alloc(0)))
  return Buffer.concat(parts)
}
const folder = mkdtempSync(join(tmpdir(), 'sluice-e2e-'))
const png = pngOf(30 * MiB)
const spoof = Buffer.concat([Buffer.from('7f454c4602010100000000000000000002003e0001000000', 'hex'), randomBytes(64 * 1024)])
const photoPath = join(folder, 'harbour.png')
const spoofPath = join(folder, 'invoice.pdf')
const tidePath = join(folder, 'tide.png')
writeFileSync(photoPath, png)
writeFileSync(spoofPath, spoof)
writeFileSync(tidePath, pngOf(12 * MiB))

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-quic',
    '--disable-sync',
  ],
})
let page
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } })
  if (process.env.E2E_DEBUG) await context.addInitScript(() => localStorage.setItem('sluice-debug', '1'))
  page = await context.newPage()
  page.on('pageerror', (error) => console.error('page error:', error.message))
  if (process.env.E2E_DEBUG) {
    page.on('console', (m) => console.error('console:', m.text()))
    page.on('request', (r) => console.error('request:', r.method(), r.url().slice(0, 120)))
    page.on('requestfailed', (r) => console.error('failed:', r.method(), r.url().slice(0, 120), r.failure()?.errorText))
  }

  // Every part PUT the page sends to S3, by part number, across the reload.
  const partPuts = []
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (request.method() === 'PUT' && url.searchParams.has('partNumber')) {
      partPuts.push({ part: Number(url.searchParams.get('partNumber')), uploadId: url.searchParams.get('uploadId') })
    }
  })

  await page.goto(api)
  await page.locator('#signin').waitFor()
  await page.fill('input[name=email]', `${randomUUID()}@example.com`)
  await page.fill('input[name=password]', 'correct horse battery')
  await page.click('button[value=signup]')
  await page.locator('#app .uppy-Dashboard').waitFor()

  // Hold the image's third part in flight, so the reload lands mid-upload.
  const held = []
  const partThree = (url) => url.searchParams.get('partNumber') === '3'
  await page.route(partThree, (route) => held.push(route))
  await page.locator('.uppy-Dashboard-input').first().setInputFiles([photoPath, spoofPath])

  // The spoof (one part) finishes and gets its verdict; the image is stuck at part 3.
  await page.locator('#files tr', { hasText: 'invoice.pdf' }).and(page.locator('[data-status=FAILED]')).waitFor({ timeout: 60_000 })
  for (let i = 0; i < 100 && held.length === 0; i++) await page.waitForTimeout(100)
  expect(held.length === 1, `part 3 of the image was sent and held (${held.length})`)
  const beforeReload = partPuts.map((p) => p.part)
  expect(beforeReload.filter((n) => n === 1).length === 2, `part 1 of each file went up before the reload: ${beforeReload}`)
  // Golden Retriever writes its state a moment after each change.
  await page.waitForTimeout(1500)

  await page.unroute(partThree)
  const sentBefore = partPuts.length
  await page.reload()
  await page.locator('#files tr', { hasText: 'harbour.png' }).and(page.locator('[data-status=UPLOADED]')).waitFor({ timeout: 120_000 })
  const resumed = partPuts.slice(sentBefore).map((p) => p.part).sort((a, b) => a - b)
  expect(JSON.stringify(resumed) === JSON.stringify([3, 4, 5, 6]), `after the reload only the missing parts went up: ${resumed}`)

  const cell = async (name, column) => (await page.locator('#files tr', { hasText: name }).locator(`.${column}`).textContent()).trim()
  expect((await cell('harbour.png', 'kind')) === 'IMAGE', 'the image is an IMAGE')
  expect((await cell('harbour.png', 'detected-type')) === 'image/png', 'detected as image/png')
  expect((await cell('invoice.pdf', 'status')) === 'FAILED', 'the spoof failed')
  const reason = await cell('invoice.pdf', 'reason')
  expect(reason.startsWith('forbidden_content'), `the spoof's reason is shown: ${reason}`)

  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'uploaded.png'), fullPage: true })

  // Sign out with an upload in flight (its part 2 held): the page aborts it
  // while still signed in, then the browser drops the HttpOnly cookie, so the
  // API refuses the page's calls.
  const aborts = []
  page.on('response', (response) => {
    if (response.request().method() === 'DELETE' && new URL(response.url()).pathname.startsWith('/s3/multipart/')) aborts.push(response.status())
  })
  const heldAtSignOut = []
  const partTwo = (url) => url.searchParams.get('partNumber') === '2'
  await page.route(partTwo, (route) => heldAtSignOut.push(route))
  await page.click('.uppy-DashboardContent-addMore')
  await page.locator('.uppy-Dashboard-input').first().setInputFiles([tidePath])
  for (let i = 0; i < 100 && heldAtSignOut.length === 0; i++) await page.waitForTimeout(100)
  expect(heldAtSignOut.length === 1, `part 2 of the third file was sent and held (${heldAtSignOut.length})`)
  // Let Golden Retriever store it, so the check below sees it forgotten.
  await page.waitForTimeout(1500)
  await page.click('#signout')
  await page.locator('#signin').waitFor()
  await page.unroute(partTwo)
  for (const route of heldAtSignOut) await route.abort().catch(() => {})
  for (let i = 0; i < 50 && aborts.length === 0; i++) await page.waitForTimeout(100)
  expect(JSON.stringify(aborts) === '[200]', `the upload in flight was aborted while signed in: ${aborts}`)
  const afterSignOut = await page.evaluate(async () => (await fetch('/files')).status)
  expect(afterSignOut === 401, `after sign-out GET /files is refused: ${afterSignOut}`)
  // The next person on this browser, on the same page and after a reload
  // (Golden Retriever restores from storage), is offered none of the files.
  await page.fill('input[name=email]', `${randomUUID()}@example.com`)
  await page.fill('input[name=password]', 'correct horse battery')
  await page.click('button[value=signup]')
  for (const when of ['after signing in', 'after a reload']) {
    if (when === 'after a reload') await page.reload()
    await page.locator('#app .uppy-Dashboard').waitFor()
    await page.waitForTimeout(1000)
    const offered = await page.locator('.uppy-Dashboard-Item').count()
    const listed = await page.locator('#files tbody tr').count()
    expect(offered === 0 && listed === 0, `${when}, the next user sees ${offered} files in Uppy and ${listed} in the list`)
  }
  console.log(`e2e: ok; resumed parts ${resumed}; signed out; screenshot in ${join(artifacts, 'uploaded.png')}`)
} catch (error) {
  if (page) {
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'failed.png'), fullPage: true }).catch(() => {})
  }
  throw error
} finally {
  await browser.close()
}
