// The demo: a collaborative CodeMirror 6 editor (y-codemirror.next, remote carets
// with names and colours), an avatar stack from awareness, a chat panel (history,
// typing, presence) and a connection/saved badge, all over one collab-client socket.
//
// Open /?doc=NAME&user=NAME (both optional) in two tabs to see it work together.

import { EditorState } from '@codemirror/state'
import { EditorView } from '@codemirror/view'
import { basicSetup } from 'codemirror'
import { CollabClient } from '@collab/client'
import { yCollab } from 'y-codemirror.next'
import * as Y from 'yjs'

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#f032e6', '#9a6324']
const NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken']

const params = new URLSearchParams(location.search)
const docName = params.get('doc') || 'welcome'
const userName = params.get('user') || `${NAMES[Math.floor(Math.random() * NAMES.length)]}-${Math.floor(Math.random() * 100)}`
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
const client = new CollabClient(`${scheme}//${location.host}/ws`)

// -- the document ------------------------------------------------------------------

const ydoc = new Y.Doc()
const provider = client.doc(docName, ydoc)
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
  if (client.status !== 'connected') state = client.status === 'connecting' ? 'connecting' : 'offline'
  else if (!provider.synced) state = 'connecting'
  else state = provider.unsyncedChanges > 0 ? 'saving' : 'saved'
  badge.dataset.state = state
  badge.textContent = { connecting: 'connecting…', offline: 'offline', saving: 'saving…', saved: 'saved' }[state]
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
loadRoom().catch((error) => console.error('chat:', error))

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
window.collabDemo = { client, ydoc, provider, room, view, userName }
