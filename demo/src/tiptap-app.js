// The Tiptap page: a Tiptap editor (StarterKit, Collaboration, CollaborationCaret
// with the user's name and colour) over @hocuspocus/provider, connected to the
// server's Hocuspocus endpoint at its root, ws(s)://<this host>/ (docs/protocol.md
// section 11), plus the avatar stack and the connection/saved badge of the
// CodeMirror page. tiptap.js starts it once the document name is valid.
//
// Tiptap edits a Y.XmlFragment and CodeMirror a Y.Text, so the two pages keep
// their content in different roots of the same document: TIPTAP_FIELD here,
// `codemirror` there. A token (#token= or ?token=) is the provider's `token`.

import { Editor } from '@tiptap/core'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import StarterKit from '@tiptap/starter-kit'
import { HocuspocusProvider } from '@hocuspocus/provider'
import * as Y from 'yjs'
import { showRefusal } from './access.js'
import { badgeRenderer, linkPages, showAvatars } from './header.js'
import { colour, docName, token, userName } from './place.js'

/** The root (a Y.XmlFragment) Tiptap's content lives in; the CodeMirror page's is the Y.Text `codemirror`. */
export const TIPTAP_FIELD = 'tiptap'

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
const ydoc = new Y.Doc()

/** null, or why the server refused this page's token: {status: 401 | 403, reason}. */
let refused = null

const provider = new HocuspocusProvider({ url: `${scheme}//${location.host}/`, name: docName, document: ydoc, token })
/** The socket under the provider; its `status` is 'connecting', 'connected' or 'disconnected'. */
const socket = provider.configuration.websocketProvider

/**
 * The server refused the token (or its absence): stop reconnecting, hide the
 * editor and say why and how to get a token, as the CodeMirror page does.
 */
function refuse (reason) {
  if (refused !== null) return
  // The provider reports the server's reason; "may not read" is a token without this document.
  refused = { status: /may not/.test(reason) ? 403 : 401, reason }
  provider.destroy()
  showRefusal(refused, { fatal: true, page: '/tiptap', doc: docName, user: userName })
  renderBadge()
}

const editor = new Editor({
  element: document.querySelector('#editor'),
  extensions: [
    // Collaboration brings its own undo history (Yjs'), so StarterKit's is off.
    StarterKit.configure({ undoRedo: false }),
    Collaboration.configure({ document: ydoc, field: TIPTAP_FIELD }),
    CollaborationCaret.configure({ provider, user: { name: userName, color: colour } })
  ],
  editorProps: { attributes: { 'aria-label': 'document (Tiptap)' } }
})

document.querySelector('#doc-name').textContent = docName
linkPages()
showAvatars(document.querySelector('#avatars'), provider.awareness, ydoc.clientID)

/** What the badge says now (header.js waits a while before it shows "saving…"). */
function badgeState () {
  if (refused !== null) return 'refused'
  if (socket.status !== 'connected') return socket.status === 'connecting' ? 'connecting' : 'offline'
  if (!provider.isSynced) return 'connecting'
  if (provider.authorizedScope === 'readonly') return 'read-only'
  // The server acknowledges an update only once it is committed: 0 unsynced is saved.
  return provider.unsyncedChanges > 0 ? 'saving' : 'saved'
}

const renderBadge = badgeRenderer(document.querySelector('#badge'),
  () => ({ state: badgeState(), unsaved: provider.unsyncedChanges }))
provider.on('status', renderBadge)
provider.on('synced', renderBadge)
provider.on('unsyncedChanges', renderBadge)
provider.on('authenticated', ({ scope }) => {
  if (scope === 'readonly') editor.setEditable(false)
  renderBadge()
})
provider.on('authenticationFailed', ({ reason }) => refuse(reason))
renderBadge()

// For the browser test and for poking around in the console.
window.tiptapDemo = { editor, provider, ydoc, userName, field: TIPTAP_FIELD, refused: () => refused }
