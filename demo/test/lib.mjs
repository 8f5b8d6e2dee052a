// What the demo's browser tests share: Debian's Chromium (never a downloaded one),
// launched headless through playwright-core, and one JSON line on stdout at the end.

import { chromium } from 'playwright-core'

/**
 * Launch Chromium, run `body(browser)`, then print `result` (which `body` and its
 * helpers fill in) as one JSON line and exit: 0 when `body` finished, 1 when it threw.
 */
export async function runInBrowser (result, body) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage']
  })
  try {
    await body(browser)
    result.ok = true
  } catch (error) {
    result.ok = false
    result.error = String(error?.stack ?? error)
  } finally {
    await browser.close()
  }
  console.log(JSON.stringify(result))
  process.exit(result.ok ? 0 : 1)
}
