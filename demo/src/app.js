// The demo: a collaborative CodeMirror 6 editor (y-codemirror.next, remote carets
// with names and colours), an avatar stack from awareness, a chat panel (history,
// pending sends, typing, presence) and a connection/saved badge, all over one
// collab-client socket. main.js starts it once the document name is valid.
//
// When the server checks tokens (COLLAB_SECRET, docs/auth.md), add #token=<jwt>
// (or ?token=<jwt>): the user is then the token's `sub`. Without an acceptable
// token the page says so, and how to get one, instead of reconnecting forever.

import { EditorState } from '@codemirror/state'
import { EditorView } from '@codemirror/view'
import { basicSetup } from 'codemirror'
import { CollabClient } from '@collab/client'
import { uuidv4 } from 'lib0/random'
import { yCollab } from 'y-codemirror.next'
import * as Y from 'yjs'
import { AUTH_CLOSE_CODES, checkAccess, showRefusal } from './access.js'
import { badgeRenderer, linkPages, showAvatars } from './header.js'
import { colour, docName, token, userName } from './place.js'

function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text // never innerHTML: names and messages are user input
  return node
}

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
// The token goes in the socket's first message (client-js's default), so a refusal
// arrives as a close with 4401 / 4403 rather than a browser's bare 1006.
const client = new CollabClient(`${scheme}//${location.host}/ws`, { token })
client.on('close', onSocketEnd)

// -- access: a token refused, or not granting everything ------------------------------

/** null, or why the page gave up: {status: 401 | 403, reason} (see showAccess). */
let refused = null
let checking = false

/**
 * A socket ended. One that never opened (a browser hides the HTTP refusal of
 * it) or that the server closed over its token (expired, revoked): ask the HTTP
 * API whether access is the trouble. If it is, stop reconnecting and say so;
 * anything else (a restart, a network blip) is the client's to retry.
 */
async function onSocketEnd ({ code, opened }) {
  if (refused !== null || checking || (opened && !AUTH_CLOSE_CODES.has(code))) return
  checking = true
  const refusal = await checkAccess(docName, token)
  checking = false
  if (refusal === null || refused !== null) return
  refused = refusal
  client.close()
  showAccess(refusal, { fatal: true })
}

/**
 * A request refused on an open socket (a token without this room, or read-only).
 * A refused token (answered before the client is 'connected') is onSocketEnd's.
 */
function onRequestError (error) {
  if (client.status !== 'connected') return
  if (refused === null && (error?.code === 'forbidden' || error?.code === 'unauthorized')) {
    showAccess({ status: 403, reason: error.message }, { fatal: false })
  }
}

function showAccess (refusal, { fatal }) {
  showRefusal(refusal, { fatal, page: '/', doc: docName, user: userName })
  renderBadge()
}

// -- the document ------------------------------------------------------------------

const ydoc = new Y.Doc()
const provider = client.doc(docName, ydoc)
provider.on('error', onRequestError)
client.on('error', onRequestError)
provider.awareness.setLocalStateField('user', { name: userName, color: colour, colorLight: `${colour}33` })
const ytext = ydoc.getText('codemirror')

// y-codemirror.next shows a remote caret's name only on hover, above the caret,
// where the editor's top edge cuts it off on line 1: show it always, with room
// above line 1 for it.
const remoteCarets = EditorView.theme({
  '.cm-content': { paddingTop: '14px' },
  '.cm-ySelectionInfo': {
    opacity: 1,
    fontFamily: 'system-ui, sans-serif',
    borderRadius: '3px 3px 3px 0',
    padding: '0 4px'
  }
})

const view = new EditorView({
  state: EditorState.create({
    doc: ytext.toString(),
    extensions: [basicSetup, EditorView.lineWrapping, yCollab(ytext, provider.awareness), remoteCarets]
  }),
  parent: document.querySelector('#editor')
})
document.querySelector('#doc-name').textContent = docName
linkPages()

showAvatars(document.querySelector('#avatars'), provider.awareness, ydoc.clientID)

// -- the badge: connected? saved? ----------------------------------------------------

/** What the badge says now (header.js waits a while before it shows "saving…"). */
function badgeState () {
  if (refused !== null) return 'refused'
  if (client.status !== 'connected') return client.status === 'connecting' ? 'connecting' : 'offline'
  if (!provider.synced) return 'connecting'
  return provider.unsyncedChanges > 0 ? 'saving' : 'saved'
}

const renderBadge = badgeRenderer(document.querySelector('#badge'),
  () => ({ state: badgeState(), unsaved: provider.unsyncedChanges }))
client.on('status', renderBadge)
provider.on('synced', renderBadge)
provider.on('saved', renderBadge)
ydoc.on('update', () => queueMicrotask(renderBadge))
renderBadge()

// -- the chat -------------------------------------------------------------------------

const room = client.room(docName, { user: userName })
const list = document.querySelector('#messages')
const shown = new Map() // seq -> <li>
const pending = new Map() // client_id -> <li> of a message sent but not yet committed

/** Show a committed message (new, edited or deleted) in seq order, before the pending ones. */
function showMessage (message) {
  let item = shown.get(message.seq)
  if (!item) {
    item = pending.get(message.client_id) ?? el('li')
    pending.delete(message.client_id)
    item.dataset.seq = String(message.seq)
    const after = [...shown.keys()].filter((seq) => seq > message.seq).sort((a, b) => a - b)[0]
    list.insertBefore(item, shown.get(after) ?? pending.values().next().value ?? null)
    shown.set(message.seq, item)
  }
  item.dataset.state = 'sent'
  item.replaceChildren(el('span', 'who', message.user), el('span', 'body', message.deleted ? '(deleted)' : message.body))
  list.scrollTop = list.scrollHeight
}

/**
 * Send `body`, shown at once as pending ("sending…"): offline it waits in the
 * client's outbox and goes out on reconnect, and a send cut off midway is
 * repeated with the same client id, which the room posts only once.
 */
function sendMessage (body) {
  const clientId = uuidv4()
  const item = el('li')
  item.dataset.state = 'pending'
  item.replaceChildren(el('span', 'who', userName), el('span', 'body', body), el('span', 'status', 'sending…'))
  pending.set(clientId, item)
  list.append(item)
  list.scrollTop = list.scrollHeight
  room.send(body, null, { clientId }).then(({ message }) => showMessage(message), (error) => {
    if (!pending.has(clientId)) return
    item.dataset.state = 'failed'
    item.querySelector('.status').textContent = `not sent: ${error?.message ?? error}`
  })
}

room.on('message', showMessage)
room.on('edit', showMessage)
room.on('delete', showMessage)

const typing = new Map() // user -> timer that clears them
function renderTyping () {
  const names = [...typing.keys()].filter((name) => name !== userName)
  document.querySelector('#typing').textContent =
    names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`
}
room.on('typing', ({ user, active }) => {
  clearTimeout(typing.get(user))
  if (active) typing.set(user, setTimeout(() => { typing.delete(user); renderTyping() }, 6000))
  else typing.delete(user)
  renderTyping()
})

// -- presence: who is online, and who was here and is not -------------------------------

const presence = new Map() // user -> 'online' | 'offline'

/**
 * "online: ann, bob · offline: cara" from the room's presence, or, while this
 * page is offline itself (and so cannot know), who was online when it last knew.
 */
function renderPresence () {
  const box = document.querySelector('#presence')
  const connected = client.status === 'connected'
  const groups = connected ? ['online', 'offline'] : ['online']
  const parts = []
  for (const status of groups) {
    const users = [...presence].filter(([, s]) => s === status).map(([user]) => user).sort()
    if (users.length === 0) continue
    const group = el('span', 'group')
    group.append(connected ? `${status}: ` : 'last seen online: ')
    users.forEach((user, i) => {
      const person = el('span', 'person', user)
      person.dataset.user = user
      person.dataset.status = connected ? status : 'unknown'
      group.append(...(i === 0 ? [] : [', ']), person)
    })
    parts.push(group)
  }
  if (!connected) parts.unshift(el('span', 'group you-offline', 'you are offline'))
  if (parts.length === 0) parts.push(el('span', 'group', 'online: —'))
  box.dataset.connected = String(connected)
  box.replaceChildren(...parts.flatMap((part, i) => (i === 0 ? [part] : [' · ', part])))
}
room.on('presence', ({ user, status }) => {
  presence.set(user, status === 'online' ? 'online' : 'offline')
  renderPresence()
})

/** Ask the room who is online (after every reconnect: events were missed meanwhile). */
async function refreshPresence () {
  const { users } = await room.presence()
  const online = new Set(users.map(({ user }) => user))
  for (const user of presence.keys()) if (!online.has(user)) presence.set(user, 'offline')
  for (const user of online) presence.set(user, 'online')
  renderPresence()
}
let historyLoaded = false
client.on('status', (status) => {
  renderPresence()
  if (status !== 'connected') return
  refreshPresence().catch(reportChatError)
  if (!historyLoaded) loadHistory().catch(reportChatError)
})

/** The last messages, once (later ones arrive as events, missed ones by the room's catch-up). */
async function loadHistory () {
  const { messages } = await room.history({ limit: 50 })
  historyLoaded = true
  messages.forEach(showMessage)
  // Who wrote here and is not online is shown as offline.
  for (const { user } of messages) if (!presence.has(user)) presence.set(user, 'offline')
  renderPresence()
}
renderPresence()

function reportChatError (error) {
  // 'disconnected': the next connection asks again; 'closed': the page gave up (no access).
  if (refused === null && error?.code !== 'closed' && error?.code !== 'disconnected') console.error('chat:', error)
}

const input = document.querySelector('#chat-input')
let typingSent = 0
input.addEventListener('input', () => {
  // Renew well before the server's 5 s expiry; offline, a stale "typing" is not worth queueing.
  if (Date.now() - typingSent > 2000 && client.status === 'connected') {
    typingSent = Date.now()
    room.typing(true).catch(() => {})
  }
})
document.querySelector('#chat-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const body = input.value.trim()
  if (!body) return
  input.value = ''
  if (typingSent !== 0 && client.status === 'connected') room.typing(false).catch(() => {})
  typingSent = 0
  sendMessage(body)
})

// For the browser test and for poking around in the console.
window.collabDemo = { client, ydoc, provider, room, view, userName, refused: () => refused }
