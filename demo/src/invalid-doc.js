// The message a page shows instead of its editor when ?doc= names a document
// the server would refuse: why, the rule, and a good address to open instead.
// Both pages (index.html, tiptap.html) hold the #invalid-doc section and #badge.

import { docName, NAME_RULE } from './place.js'

/**
 * Show why `docName` cannot be opened, with a link to `page`?doc=welcome.
 *
 * @param {string} problem what nameProblem() said
 * @param {string} page the page's own path: '/' or '/tiptap'
 */
export function showInvalidName (problem, page) {
  document.body.dataset.page = 'invalid-doc'
  document.querySelector('#invalid-doc-name').textContent = docName
  document.querySelector('#invalid-doc-reason').textContent =
    `The server would refuse it: ${problem}. Names are ${NAME_RULE}.`
  const link = document.querySelector('#invalid-doc-link')
  link.href = `${page}?doc=welcome`
  link.textContent = `${location.origin}${page}?doc=welcome`
  document.querySelector('#invalid-doc').hidden = false
  const badge = document.querySelector('#badge')
  badge.dataset.state = 'invalid'
  badge.textContent = 'not opened'
}
