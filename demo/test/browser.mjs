// Two headless Chromium pages (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser is downloaded) use the demo on one document against a real server:
// each sees the other's text and caret and avatar, a chat message sent in one
// appears in the other with the typing indicator before it, and a reload keeps
// the content and the chat history. Screenshots go to --shots.
//
// Against a server that checks tokens, pass tokens for users ann and bob: ann
// opens the page with #token=, bob with ?token= (and a ?user= the token's sub
// must override). Before them, a page without a token and one with --bad-token
// must each show the access message and stop connecting.
//
//   node test/browser.mjs --url http://127.0.0.1:PORT --doc NAME --shots DIR
//        [--token-ann JWT --token-bob JWT --bad-token JWT]
//
// Prints one JSON line: {ok, ...what it saw} or {ok: false, error}.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    doc: { type: 'string', default: 'browser-test' },
    shots: { type: 'string', default: 'artifacts' },
    'timeout-ms': { type: 'string', default: '20000' },
    'token-ann': { type: 'string' },
    'token-bob': { type: 'string' },
    'bad-token': { type: 'string' }
  }
})
const timeout = Number(args['timeout-ms'])
const result = { ok: false }

const editorText = (page) => page.evaluate(() => window.collabDemo.ydoc.getText('codemirror').toString())
const visibleText = (page) => page.locator('.cm-content').innerText()

const auth = args['token-ann'] !== undefined

/** A new page at the demo with `query` and `hash` added to ?doc=; counts its WebSockets. */
async function load (browser, who, { query = '', hash = '' } = {}) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
  page.setDefaultTimeout(timeout)
  page.on('pageerror', (error) => { result.pageErrors = [...(result.pageErrors ?? []), `${who}: ${error.message}`] })
  page.sockets = 0
  page.on('websocket', () => { page.sockets++ })
  await page.goto(`${args.url}/?doc=${encodeURIComponent(args.doc)}${query}${hash}`)
  return page
}

/** Ann or Bob, signed in: by #token= / ?token= on an auth server, by ?user= otherwise. */
async function open (browser, user) {
  let where = { query: `&user=${user}` }
  if (auth && user === 'ann') where = { hash: `#token=${args['token-ann']}` }
  if (auth && user === 'bob') where = { query: `&user=mallory&token=${args['token-bob']}` }
  const page = await load(browser, user, where)
  await page.locator('#badge[data-state="saved"]').waitFor()
  return page
}

/** A page the server refuses: waits for the access message and reports what it says. */
async function refusedPage (browser, who, where) {
  const page = await load(browser, who, where)
  await page.locator('#access').waitFor({ state: 'visible' })
  await page.locator('#badge[data-state="refused"]').waitFor()
  return {
    page,
    title: await page.locator('#access-title').innerText(),
    reason: await page.locator('#access-reason').innerText(),
    text: await page.locator('#access').innerText(),
    editorVisible: await page.locator('#editor').isVisible(),
    sockets: page.sockets
  }
}

async function typeAtEnd (page, text) {
  await page.locator('.cm-content').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage']
})
try {
  await mkdir(args.shots, { recursive: true })
  const refused = []
  if (auth) {
    refused.push(await refusedPage(browser, 'no token', {}))
    refused.push(await refusedPage(browser, 'bad token', { hash: `#token=${args['bad-token']}` }))
    await refused[0].page.screenshot({ path: join(args.shots, 'demo-no-token.png') })
  }
  const ann = await open(browser, 'ann')
  const bob = await open(browser, 'bob')

  // Text both ways, as it appears on screen.
  await typeAtEnd(ann, 'Hello from Ann.')
  await bob.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('Hello from Ann.'))
  await typeAtEnd(bob, ' Bob was here.')
  await ann.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('Bob was here.'))

  // Each sees the other's caret with its name, and both avatars.
  await bob.locator('.cm-ySelectionInfo', { hasText: 'ann' }).waitFor({ state: 'attached' })
  await ann.locator('.cm-ySelectionInfo', { hasText: 'bob' }).waitFor({ state: 'attached' })
  for (const page of [ann, bob]) {
    await page.locator('#avatars .avatar[data-name="ann"]').waitFor()
    await page.locator('#avatars .avatar[data-name="bob"]').waitFor()
  }

  // Chat: the typing indicator, then the message, in the other page.
  await bob.locator('#chat-input').click()
  await bob.keyboard.type('hi ann')
  await ann.locator('#typing', { hasText: 'bob is typing' }).waitFor()
  await bob.keyboard.press('Enter')
  await ann.locator('#messages li', { hasText: 'hi ann' }).waitFor()
  await ann.locator('#presence', { hasText: 'bob' }).waitFor()

  // Saved: every local change acknowledged by the server.
  await ann.locator('#badge[data-state="saved"]').waitFor()
  await bob.locator('#badge[data-state="saved"]').waitFor()
  result.textAnn = await editorText(ann)
  result.textBob = await editorText(bob)
  await ann.screenshot({ path: join(args.shots, 'demo-ann.png') })
  await bob.screenshot({ path: join(args.shots, 'demo-bob.png') })

  // A reload keeps the document and the chat history.
  await bob.reload()
  await bob.locator('#badge[data-state="saved"]').waitFor()
  await bob.locator('#messages li', { hasText: 'hi ann' }).waitFor()
  result.textAfterReload = await editorText(bob)
  result.visibleAfterReload = await visibleText(bob)
  await bob.screenshot({ path: join(args.shots, 'demo-bob-reloaded.png') })

  if (auth) {
    // The refused pages gave up: no socket since their message, all this while.
    result.refused = await Promise.all(refused.map(async ({ page, ...seen }) => ({
      ...seen,
      socketsAtEnd: page.sockets,
      statusAtEnd: await page.evaluate(() => window.collabDemo.client.status)
    })))
    result.names = await Promise.all([ann, bob].map((page) => page.evaluate(() => window.collabDemo.userName)))
    result.accessShown = await Promise.all([ann, bob].map((page) => page.locator('#access').isVisible()))
  }
  result.ok = true
} catch (error) {
  result.error = String(error?.stack ?? error)
} finally {
  await browser.close()
}
console.log(JSON.stringify(result))
process.exit(result.ok ? 0 : 1)
