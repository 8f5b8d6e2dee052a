// The demo: a collaborative CodeMirror 6 editor (y-codemirror.next, remote carets
// with names and colours), an avatar stack from awareness, a chat panel (history,
// typing, presence) and a connection/saved badge, all over one collab-client socket.
//
// Open /?doc=NAME&user=NAME (both optional) in two tabs to see it work together.
// When the server checks tokens (COLLAB_SECRET, docs/auth.md), add #token=<jwt>
// (or ?token=<jwt>): the user is then the token's `sub`. Without an acceptable
// token the page says so, and how to get one, instead of reconnecting forever.

import { EditorState } from '@codemirror/state'
import { EditorView } from '@codemirror/view'
import { basicSetup } from 'codemirror'
import { CollabClient } from '@collab/client'
import { yCollab } from 'y-codemirror.next'
import * as Y from 'yjs'
import { AUTH_CLOSE_CODES, checkAccess, tokenFromLocation, tokenUser } from './access.js'

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#f032e6', '#9a6324']
const NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken']

const params = new URLSearchParams(location.search)
const docName = params.get('doc') || 'welcome'
const token = tokenFromLocation(location)
// With a token the server makes its `sub` the room's user and refuses any other name.
const userName = (token !== null && tokenUser(token)) || params.get('user') ||
  `${NAMES[Math.floor(Math.random() * NAMES.length)]}-${Math.floor(Math.random() * 100)}`
const colour = COLOURS[hash(userName) % COLOURS.length]

function hash (text) {
  let h = 0
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return h
}

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

function showAccess ({ status, reason }, { fatal }) {
  let title
  if (status === 401 && token === null) title = 'This server needs a token to let you in.'
  else if (status === 401) title = 'The server refused your token.'
  else title = `Your token does not give ${userName} access to everything here.`
  document.querySelector('#access-title').textContent = title
  // Without a token the server's reason ("missing token: …") would only name the header of our check.
  document.querySelector('#access-reason').textContent = reason && token !== null ? `The server said: ${reason}` : ''
  document.querySelector('#access-link').textContent =
    `${location.origin}/?doc=${docName}#token=<the token>`
  document.querySelector('#access').hidden = false
  document.body.dataset.access = fatal ? 'refused' : 'limited'
  renderBadge()
}

// -- the document ------------------------------------------------------------------

const ydoc = new Y.Doc()
const provider = client.doc(docName, ydoc)
provider.on('error', onRequestError)
client.on('error', onRequestError)
provider.awareness.setLocalStateField('user', { name: userName, color: colour, colorLight: `${colour}33` })
const ytext = ydoc.getText('codemirror')

const view = new EditorView({
  state: EditorState.create({
    doc: ytext.toString(),
    extensions: [basicSetup, EditorView.lineWrapping, yCollab(ytext, provider.awareness)]
  }),
  parent: document.querySelector('#editor')
})
document.querySelector('#doc-name').textContent = docName

function renderAvatars () {
  const box = document.querySelector('#avatars')
  box.replaceChildren()
  for (const [clientId, state] of provider.awareness.getStates()) {
    const user = state.user
    if (!user || typeof user.name !== 'string') continue
    const avatar = el('span', 'avatar', user.name.slice(0, 2).toUpperCase())
    avatar.style.background = typeof user.color === 'string' ? user.color : '#888'
    avatar.title = clientId === ydoc.clientID ? `${user.name} (you)` : user.name
    avatar.dataset.name = user.name
    box.append(avatar)
  }
}
provider.awareness.on('change', renderAvatars)
renderAvatars()

// -- the badge: connected? saved? ----------------------------------------------------

function renderBadge () {
  const badge = document.querySelector('#badge')
  let state
  if (refused !== null) state = 'refused'
  else if (client.status !== 'connected') state = client.status === 'connecting' ? 'connecting' : 'offline'
  else if (!provider.synced) state = 'connecting'
  else state = provider.unsyncedChanges > 0 ? 'saving' : 'saved'
  badge.dataset.state = state
  badge.textContent = {
    refused: 'no access', connecting: 'connecting…', offline: 'offline', saving: 'saving…', saved: 'saved'
  }[state]
}
client.on('status', renderBadge)
provider.on('synced', renderBadge)
provider.on('saved', renderBadge)
ydoc.on('update', () => queueMicrotask(renderBadge))
renderBadge()

// -- the chat -------------------------------------------------------------------------

const room = client.room(docName, { user: userName })
const list = document.querySelector('#messages')
const shown = new Map() // seq -> <li>

function showMessage (message) {
  let item = shown.get(message.seq)
  if (!item) {
    item = el('li')
    item.dataset.seq = String(message.seq)
    const before = [...shown.keys()].filter((seq) => seq > message.seq).sort((a, b) => a - b)[0]
    list.insertBefore(item, before === undefined ? null : shown.get(before))
    shown.set(message.seq, item)
  }
  item.replaceChildren(el('span', 'who', message.user), el('span', 'body', message.deleted ? '(deleted)' : message.body))
  list.scrollTop = list.scrollHeight
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

const online = new Set()
function renderPresence () {
  document.querySelector('#presence').textContent = `online: ${[...online].sort().join(', ') || '—'}`
}
room.on('presence', ({ user, status }) => {
  if (status === 'online') online.add(user)
  else online.delete(user)
  renderPresence()
})

async function loadRoom () {
  const [{ messages }, presence] = await Promise.all([room.history({ limit: 50 }), room.presence()])
  messages.forEach(showMessage)
  for (const { user } of presence.users) online.add(user)
  renderPresence()
}
loadRoom().catch((error) => {
  if (refused === null && error?.code !== 'closed') console.error('chat:', error)
})

const input = document.querySelector('#chat-input')
let typingSent = 0
input.addEventListener('input', () => {
  if (Date.now() - typingSent > 2000) { // renew well before the server's 5 s expiry
    typingSent = Date.now()
    room.typing(true).catch(() => {})
  }
})
document.querySelector('#chat-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const body = input.value.trim()
  if (!body) return
  input.value = ''
  typingSent = 0
  room.typing(false).catch(() => {})
  room.send(body).then(({ message }) => showMessage(message), (error) => console.error('send:', error))
})

// For the browser test and for poking around in the console.
window.collabDemo = { client, ydoc, provider, room, view, userName, refused: () => refused }
