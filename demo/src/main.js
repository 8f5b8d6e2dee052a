// The demo page's entry: open the document the address names (app.js), or,
// when the server would refuse that name, say so and what a good one looks
// like instead of failing on a blank page.
//
// Open /?doc=NAME&user=NAME (both optional) in two tabs to see it work together.

import { showInvalidName } from './invalid-doc.js'
import { docName, nameProblem } from './place.js'

const problem = nameProblem(docName)
if (problem === null) {
  import('./app.js')
} else {
  showInvalidName(problem, '/')
}
