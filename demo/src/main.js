// The demo page's entry: open the document the address names (app.js), or,
// when the server would refuse that name, say so and what a good one looks
// like instead of failing on a blank page.
//
// Open /?doc=NAME&user=NAME (both optional) in two tabs to see it work together.

import { docName, NAME_RULE, nameProblem } from './place.js'

const problem = nameProblem(docName)
if (problem === null) {
  import('./app.js')
} else {
  showInvalidName(problem)
}

function showInvalidName (problem) {
  document.body.dataset.page = 'invalid-doc'
  document.querySelector('#invalid-doc-name').textContent = docName
  document.querySelector('#invalid-doc-reason').textContent =
    `The server would refuse it: ${problem}. Names are ${NAME_RULE}.`
  const link = document.querySelector('#invalid-doc-link')
  link.href = '/?doc=welcome'
  link.textContent = `${location.origin}/?doc=welcome`
  document.querySelector('#invalid-doc').hidden = false
  const badge = document.querySelector('#badge')
  badge.dataset.state = 'invalid'
  badge.textContent = 'not opened'
}
