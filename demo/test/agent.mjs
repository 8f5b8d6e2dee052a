// The agent example in the demo (a server run with --app examples.agent:registry):
// one headless Chromium page (Debian's /usr/bin/chromium, driven by playwright-core)
// writes notes, sends /summarize in the chat, and sees the agent answer in the chat,
// its caret named "Agent" in the editor while it types, and the summary in the text.
//
//   node test/agent.mjs --url http://127.0.0.1:PORT --doc NAME --shots DIR
//
// Prints one JSON line: {ok, ...what it saw} or {ok: false, error}.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runInBrowser } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    doc: { type: 'string', default: 'agent-test' },
    shots: { type: 'string', default: 'artifacts' },
    'timeout-ms': { type: 'string', default: '20000' },
    notes: { type: 'string', default: 'We met on Monday. The launch moves to March.' }
  }
})
const timeout = Number(args['timeout-ms'])
const result = { ok: false }

await runInBrowser(result, async (browser) => {
  await mkdir(args.shots, { recursive: true })
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
  page.setDefaultTimeout(timeout)
  page.on('pageerror', (error) => { result.pageErrors = [...(result.pageErrors ?? []), error.message] })
  await page.goto(`${args.url}/?doc=${encodeURIComponent(args.doc)}&user=ann`)
  await page.locator('#badge[data-state="saved"]').waitFor()
  await page.locator('.cm-content').click()
  await page.keyboard.type(args.notes)
  await page.locator('#badge[data-state="saved"]').waitFor()

  await page.locator('#chat-input').click()
  await page.keyboard.type('/summarize')
  await page.keyboard.press('Enter')
  await page.locator('#messages li', { hasText: 'On it: /summarize for ann.' }).waitFor()
  // While it types: its caret, with its name, in the editor.
  await page.locator('.cm-ySelectionInfo', { hasText: 'Agent' }).waitFor({ state: 'attached' })
  result.caretSeen = true
  await page.screenshot({ path: join(args.shots, 'demo-agent-typing.png') })
  await page.locator('#messages li', { hasText: 'Summary is in the document, ann.' }).waitFor()
  await page.locator('#badge[data-state="saved"]').waitFor()
  result.text = await page.evaluate(() => window.collabDemo.ydoc.getText('codemirror').toString())
  result.visible = await page.locator('.cm-content').innerText()
  await page.screenshot({ path: join(args.shots, 'demo-agent-done.png') })
})
