// The Tiptap page (/tiptap) in two headless Chromium pages (Debian's /usr/bin/chromium,
// driven by playwright-core; no browser is downloaded) on one document against a real
// server: each types, sees the other's text and the other's caret with its name
// (CollaborationCaret), both avatars, and the badge reaching "saved" (the provider's
// unsyncedChanges back at 0); a reload keeps the content. Then: the links between the
// two pages, an invalid ?doc=, and a page cut off from the server (through proxy.mjs)
// whose edit waits unsaved and is saved once it is back; phone width. Screenshots go to --shots.
//
// Against a server that checks tokens, pass tokens for users ann and bob: ann opens
// the page with #token=, bob with ?token= (and a ?user= the token's sub must
// override). Before them, a page without a token and one with --bad-token must each
// show the access message and stop connecting.
//
//   node test/tiptap.mjs --url http://127.0.0.1:PORT --doc NAME --shots DIR
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
    doc: { type: 'string', default: 'tiptap-test' },
    shots: { type: 'string', default: 'artifacts' },
    'timeout-ms': { type: 'string', default: '20000' },
    'token-ann': { type: 'string' },
    'token-bob': { type: 'string' },
    'bad-token': { type: 'string' }
  }
})
const timeout = Number(args['timeout-ms'])
const auth = args['token-ann'] !== undefined
const result = { ok: false }
const EDITOR = '#editor .tiptap'
const DESKTOP = { width: 1000, height: 600 }

/** Append `item` to the list `result[key]`. */
function note (key, item) {
  result[key] = [...(result[key] ?? []), item]
}

/** A new page at `path` (/tiptap unless given) with ?doc= and `query`, `hash`; notes errors, 404s, sockets. */
async function load (browser, who, { query = '', hash = '', base = args.url, doc = args.doc, path = '/tiptap', viewport = DESKTOP } = {}) {
  const page = await browser.newPage({ viewport })
  page.setDefaultTimeout(timeout)
  page.on('pageerror', (error) => note('pageErrors', `${who}: ${error.message}`))
  page.on('response', (response) => { if (response.status() === 404) note('notFound', `${who}: ${response.url()}`) })
  page.sockets = 0
  page.on('websocket', () => { page.sockets++ })
  await page.goto(`${base}${path}?doc=${encodeURIComponent(doc)}${query}${hash}`)
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

/** Every local change acknowledged by the server (unsyncedChanges 0), and the badge says so. */
async function waitSaved (page) {
  await page.locator('#badge[data-state="saved"][data-unsaved="0"]').waitFor()
}

async function typeAtEnd (page, text) {
  await page.locator(EDITOR).click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}

/** What the page's Tiptap holds: the editor's text and the Y.XmlFragment under it. */
function contents (page) {
  return page.evaluate(() => ({
    text: window.tiptapDemo.editor.getText(),
    fragment: window.tiptapDemo.ydoc.getXmlFragment(window.tiptapDemo.field).toString()
  }))
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

/**
 * `who`'s caret label on `page`, with the mouse away: its text, colour, and
 * whether it lies inside the editor's pane and nothing covers its centre.
 */
async function caretLabel (page, who) {
  await page.mouse.move(1, 1)
  const label = page.locator('.collaboration-carets__label', { hasText: who })
  await label.waitFor()
  return label.evaluate((el) => {
    el.style.pointerEvents = 'auto' // CollaborationCaret's carets ignore the mouse, so elementFromPoint would too
    const box = el.getBoundingClientRect()
    const pane = document.querySelector('#editor').getBoundingClientRect()
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2)
    return {
      text: el.textContent,
      background: getComputedStyle(el).backgroundColor,
      inside: box.top >= pane.top && box.left >= pane.left && box.bottom <= pane.bottom && box.right <= pane.right,
      hit: hit === el || el.contains(hit)
    }
  })
}

/** The badge's texts while `page` types 20 characters quickly. */
async function badgeChanges (page) {
  await page.evaluate(() => {
    const badge = document.querySelector('#badge')
    window.badgeTexts = []
    new MutationObserver(() => window.badgeTexts.push(badge.textContent))
      .observe(badge, { childList: true, characterData: true, subtree: true })
  })
  await typeAtEnd(page, ' typing twenty chars')
  await waitSaved(page)
  await page.waitForTimeout(500) // a late "saving…" would show by now
  return page.evaluate(() => window.badgeTexts)
}

/**
 * The links between the pages keep the query; the page fits a phone; an invalid
 * ?doc= explains itself and opens no socket.
 */
async function pagesAndNames (browser, ann) {
  const cm = await load(browser, 'cm', { path: '/', query: '&user=ann' })
  result.links = {
    toCodeMirror: await ann.locator('.note a[data-page="/"]').getAttribute('href'),
    toTiptap: await cm.locator('a[data-page="/tiptap"]').getAttribute('href'),
    note: await ann.locator('.note').innerText()
  }
  await cm.close()

  // A phone: nothing wider than the screen.
  const phone = await load(browser, 'phil', { query: '&user=phil', viewport: { width: 390, height: 844 } })
  await waitSaved(phone)
  await phone.locator(EDITOR, { hasText: 'Bob was here.' }).waitFor()
  result.phoneScrollWidth = await phone.evaluate(() => document.documentElement.scrollWidth)
  await phone.screenshot({ path: join(args.shots, 'tiptap-phone.png') })
  await phone.close()

  const page = await load(browser, 'invalid', { doc: 'my notes!' })
  await page.locator('#invalid-doc').waitFor()
  await page.waitForTimeout(300) // long enough for a socket it should not open
  result.invalid = {
    text: await page.locator('#invalid-doc').innerText(),
    link: await page.locator('#invalid-doc-link').getAttribute('href'),
    editorVisible: await page.locator(EDITOR).isVisible(),
    sockets: page.sockets
  }
  await page.screenshot({ path: join(args.shots, 'tiptap-invalid-doc.png') })
  await page.close()
}

/** Cara, through a proxy that is then cut: her edit waits unsaved; restored, it is saved and Bob has it. */
async function offlineEdit (browser, bob) {
  const proxy = await startProxy(new URL(args.url))
  try {
    const cara = await open(browser, 'cara', { base: proxy.url })
    proxy.cut()
    await cara.locator('#badge[data-state="offline"], #badge[data-state="connecting"]').waitFor()
    await typeAtEnd(cara, ' Cara offline.')
    await cara.waitForTimeout(500) // nothing can take it
    result.offline = {
      badge: await cara.locator('#badge').innerText(),
      unsaved: Number(await cara.locator('#badge').getAttribute('data-unsaved'))
    }
    await cara.screenshot({ path: join(args.shots, 'tiptap-offline.png') })
    proxy.restore()
    await waitSaved(cara)
    await bob.locator(EDITOR, { hasText: 'Cara offline.' }).waitFor()
    result.textAfterOffline = (await contents(bob)).text
    await cara.close()
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
    await refused[0].page.screenshot({ path: join(args.shots, 'tiptap-no-token.png') })
  }
  const ann = await open(browser, 'ann')
  const bob = await open(browser, 'bob')

  // Text both ways, as it appears on screen.
  await typeAtEnd(ann, 'Hello from Ann.')
  await bob.locator(EDITOR, { hasText: 'Hello from Ann.' }).waitFor()
  await typeAtEnd(bob, ' Bob was here.')
  await ann.locator(EDITOR, { hasText: 'Bob was here.' }).waitFor()

  // Each sees the other's caret with its name, and both avatars.
  result.carets = { onAnn: await caretLabel(ann, 'bob'), onBob: await caretLabel(bob, 'ann') }
  for (const page of [ann, bob]) {
    await page.locator('#avatars .avatar[data-name="ann"]').waitFor()
    await page.locator('#avatars .avatar[data-name="bob"]').waitFor()
  }
  await waitSaved(ann)
  await waitSaved(bob)
  result.ann = await contents(ann)
  result.bob = await contents(bob)
  await ann.screenshot({ path: join(args.shots, 'tiptap-ann.png') })
  await bob.screenshot({ path: join(args.shots, 'tiptap-bob.png') })

  // A reload keeps the content.
  await bob.reload()
  await waitSaved(bob)
  await bob.locator(EDITOR, { hasText: 'Bob was here.' }).waitFor()
  result.afterReload = await contents(bob)
  await bob.screenshot({ path: join(args.shots, 'tiptap-bob-reloaded.png') })

  if (auth) {
    // The refused pages gave up: no socket since their message, all this while.
    result.refused = refused.map(({ page, ...seen }) => ({ ...seen, socketsAtEnd: page.sockets }))
    result.names = await Promise.all([ann, bob].map((page) => page.evaluate(() => window.tiptapDemo.userName)))
  } else {
    result.badgeTexts = await badgeChanges(ann)
    await pagesAndNames(browser, ann)
    await offlineEdit(browser, bob)
  }
})
