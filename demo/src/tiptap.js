// The Tiptap page's entry (/tiptap): open the document the address names
// (tiptap-app.js), or, when the server would refuse that name, say so, as the
// CodeMirror page does.
//
// Open /tiptap?doc=NAME&user=NAME (both optional) in two tabs to see it work together.

import { showInvalidName } from './invalid-doc.js'
import { docName, nameProblem } from './place.js'

const problem = nameProblem(docName)
if (problem === null) {
  import('./tiptap-app.js')
} else {
  showInvalidName(problem, '/tiptap')
}
