// Two headless Chromium pages (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser is downloaded) use the demo on one document against a real server:
// each sees the other's text and caret and avatar, a chat message sent in one
// appears in the other with the typing indicator before it, and a reload keeps
// the content and the chat history. Screenshots go to --shots.
//
// Without tokens it also checks what new users tripped over (issue 17): a remote
// caret's name shows without hovering, also on line 1; the saved badge does not
// flicker while typing; long words wrap; the page fits a 390 px phone; an invalid
// ?doc= explains itself; the favicon is served; and a page cut off from the server
// (through proxy.mjs) shows its chat message pending until it is posted on
// reconnect, while the others see it go offline.
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
import { runInBrowser } from './lib.mjs'
import { startProxy } from './proxy.mjs'

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

const DESKTOP = { width: 1100, height: 700 }
const PHONE = { width: 390, height: 844 }

/** Append `item` to the list `result[key]`. */
function note (key, item) {
  result[key] = [...(result[key] ?? []), item]
}

/**
 * A new page at the demo (at `base`, the server unless given) with `query` and
 * `hash` added to ?doc=; counts its WebSockets, notes its errors and any 404.
 */
async function load (browser, who, { query = '', hash = '', base = args.url, doc = args.doc, viewport = DESKTOP } = {}) {
  const page = await browser.newPage({ viewport })
  page.setDefaultTimeout(timeout)
  page.on('pageerror', (error) => note('pageErrors', `${who}: ${error.message}`))
  page.on('response', (response) => { if (response.status() === 404) note('notFound', `${who}: ${response.url()}`) })
  page.on('console', (message) => {
    if (message.type() === 'error' && /404|favicon/i.test(message.text())) note('notFound', `${who}: ${message.text()}`)
  })
  page.sockets = 0
  page.on('websocket', () => { page.sockets++ })
  await page.goto(`${base}/?doc=${encodeURIComponent(doc)}${query}${hash}`)
  return page
}

/** Ann or Bob, signed in: by #token= / ?token= on an auth server, by ?user= otherwise. */
async function open (browser, user, options = {}) {
  let where = { query: `&user=${user}` }
  if (auth && user === 'ann') where = { hash: `#token=${args['token-ann']}` }
  if (auth && user === 'bob') where = { query: `&user=mallory&token=${args['token-bob']}` }
  const page = await load(browser, user, { ...where, ...options })
  await waitSaved(page)
  return page
}

/** Every local change acknowledged by the server, and the badge says so. */
async function waitSaved (page) {
  await page.locator('#badge[data-state="saved"][data-unsaved="0"]').waitFor()
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

/**
 * Where `who`'s caret label is on `page`, with the mouse away from it: its
 * opacity, whether it lies inside the editor's scroller, which line it marks,
 * and whether the point at its centre is the label (nothing clips or covers it).
 */
async function caretLabel (page, who) {
  await page.mouse.move(1, 1)
  const label = page.locator('.cm-ySelectionInfo', { hasText: who })
  await label.waitFor()
  await page.waitForFunction((el) => getComputedStyle(el).opacity === '1', await label.elementHandle())
  return label.evaluate((el) => {
    const box = el.getBoundingClientRect()
    const scroller = el.closest('.cm-scroller').getBoundingClientRect()
    const line = el.closest('.cm-line')
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2)
    return {
      opacity: getComputedStyle(el).opacity,
      inside: box.top >= scroller.top && box.left >= scroller.left &&
        box.bottom <= scroller.bottom && box.right <= scroller.right,
      line: [...line.parentElement.children].indexOf(line) + 1,
      hit: hit === el || el.contains(hit),
      top: box.top - scroller.top
    }
  })
}

/** How many times the badge's text changes while `page` types 20 characters quickly. */
async function badgeChanges (page) {
  await page.evaluate(() => {
    const badge = document.querySelector('#badge')
    window.badgeTexts = []
    new MutationObserver(() => window.badgeTexts.push(badge.textContent))
      .observe(badge, { childList: true, characterData: true, subtree: true })
  })
  await page.locator('.cm-content').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(' typing twenty chars', { delay: 25 })
  await waitSaved(page)
  await page.waitForTimeout(500) // a late "saving…" would show by now
  return page.evaluate(() => window.badgeTexts)
}

/** Whether `selector`'s box (each match) lies within the width of `within`'s, and scrolls no wider. */
function fitsWidth (page, selector, within) {
  return page.evaluate(([selector, within]) => {
    const outer = document.querySelector(within)
    const bounds = outer.getBoundingClientRect()
    const items = [...document.querySelectorAll(selector)]
    return items.length > 0 && outer.scrollWidth <= outer.clientWidth &&
      items.every((item) => {
        const box = item.getBoundingClientRect()
        return box.left >= bounds.left - 0.5 && box.right <= bounds.right + 0.5 && box.height > 40
      })
  }, [selector, within])
}

/** The issue-17 checks, on the unauthenticated server (ann and bob have edited and chatted). */
async function newUserChecks (browser, ann, bob) {
  result.badgeTexts = await badgeChanges(ann)

  // A 300-character word wraps in the editor and in the chat.
  const word = 'w'.repeat(299) + '!'
  await ann.locator('.cm-content').click()
  await ann.keyboard.press('Control+End')
  await ann.keyboard.press('Enter')
  await ann.keyboard.insertText(word)
  await ann.locator('#chat-input').fill(word)
  await ann.locator('#chat-input').press('Enter')
  await bob.locator('#messages li[data-state="sent"]', { hasText: word }).waitFor()
  await bob.locator('.cm-line', { hasText: word }).waitFor()
  result.wraps = {
    editor: await fitsWidth(bob, `.cm-line:nth-child(2)`, '.cm-scroller'),
    chat: await fitsWidth(bob, '#messages li:last-child', '#messages')
  }

  // A phone: editor above chat, nothing wider than the screen.
  const phone = await open(browser, 'phil', { viewport: PHONE })
  await phone.locator('#messages li', { hasText: word }).waitFor()
  result.phone = await phone.evaluate(() => {
    const editor = document.querySelector('#editor').getBoundingClientRect()
    const chat = document.querySelector('.chat').getBoundingClientRect()
    return {
      scrollWidth: document.documentElement.scrollWidth,
      stacked: chat.top >= editor.bottom - 1 && chat.width > 300 && editor.width > 300
    }
  })
  await phone.screenshot({ path: join(args.shots, 'demo-phone.png'), fullPage: true })
  await phone.close()

  // Invalid document names: a message, no socket, no error.
  result.invalid = []
  for (const [doc, shot] of [['x'.repeat(129), 'demo-invalid-doc.png'], ['my notes!', null]]) {
    const page = await load(browser, `doc ${doc.slice(0, 12)}`, { doc })
    await page.locator('#invalid-doc').waitFor()
    await page.waitForTimeout(300) // long enough for a socket it should not open
    if (shot) await page.screenshot({ path: join(args.shots, shot) })
    result.invalid.push({
      text: await page.locator('#invalid-doc').innerText(),
      editorVisible: await page.locator('#editor').isVisible(),
      sockets: page.sockets
    })
    await page.close()
  }

  // The favicon: linked from the page, and at /favicon.ico for whoever asks there.
  const href = await ann.locator('link[rel="icon"]').evaluate((link) => link.href)
  const icons = await Promise.all([href, `${args.url}/favicon.ico`].map((url) => ann.request.get(url)))
  result.favicon = icons.map((response) => ({ status: response.status(), type: response.headers()['content-type'] }))

  await offlineChat(browser, bob)
}

/**
 * Cara, through a proxy that is then cut: her message shows pending, the others
 * see her offline; restored, her message is posted (once) and shows as sent.
 */
async function offlineChat (browser, bob) {
  const proxy = await startProxy(new URL(args.url))
  try {
    const cara = await open(browser, 'cara', { base: proxy.url })
    await bob.locator('#presence .person[data-user="cara"][data-status="online"]').waitFor()
    await cara.locator('#messages li', { hasText: 'hi ann' }).waitFor() // the history is in
    await cara.locator('#presence .person[data-user="bob"][data-status="online"]').waitFor()
    proxy.cut()
    await cara.locator('#badge[data-state="offline"], #badge[data-state="connecting"]').waitFor()
    await bob.locator('#presence .person[data-user="cara"][data-status="offline"]').waitFor()
    result.presenceCut = await bob.locator('#presence').innerText()

    const body = 'sent while offline'
    await cara.locator('#chat-input').fill(body)
    await cara.locator('#chat-input').press('Enter')
    const mine = cara.locator('#messages li', { hasText: body })
    await mine.and(cara.locator('[data-state="pending"]')).waitFor()
    await cara.waitForTimeout(500) // still pending: there is no server to take it
    result.pending = {
      state: await mine.getAttribute('data-state'),
      text: await mine.innerText(),
      colour: await mine.evaluate((el) => getComputedStyle(el).color),
      presence: await cara.locator('#presence').innerText()
    }
    await cara.screenshot({ path: join(args.shots, 'demo-pending.png') })

    proxy.restore()
    await mine.and(cara.locator('[data-state="sent"]')).waitFor()
    await bob.locator('#messages li', { hasText: body }).waitFor()
    await bob.locator('#presence .person[data-user="cara"][data-status="online"]').waitFor()
    await waitSaved(cara)
    result.sent = {
      text: await mine.innerText(),
      copies: [await cara.locator('#messages li', { hasText: body }).count(),
        await bob.locator('#messages li', { hasText: body }).count()]
    }
    await cara.screenshot({ path: join(args.shots, 'demo-sent.png') })
  } finally {
    await proxy.close()
  }
}

await runInBrowser(result, async (browser) => {
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
  await waitSaved(ann)
  await waitSaved(bob)
  if (!auth) result.caretLabel = await caretLabel(ann, 'bob')
  result.textAnn = await editorText(ann)
  result.textBob = await editorText(bob)
  await ann.screenshot({ path: join(args.shots, 'demo-ann.png') })
  await bob.screenshot({ path: join(args.shots, 'demo-bob.png') })

  // A reload keeps the document and the chat history.
  await bob.reload()
  await waitSaved(bob)
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
  } else {
    await newUserChecks(browser, ann, bob)
  }
})
