// A victim and an observer (stock y-websocket clients) share a document; a forger on a
// raw WebSocket sends awareness for the victim's client id: a state of its own and a
// removal, both at clock 2^53-1 (which would hide the victim for good), then a state
// for an id of its own. The observer must still see the victim, and see its later
// changes; the victim's reconnect (same client id) and its own removal must work.
//
//   node awareness_forgery.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME [--token JWT]
//
// Prints one JSON line: {ok, victimId, seenAfterForgery, ...}.

import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import { closeAll, createClient, peerNames, run, waitFor, waitSynced } from './lib.mjs'

const MESSAGE_AWARENESS = 1
const FORGER_ID = 4242

/** One y-websocket awareness frame carrying `entries`: [clientID, clock, JSON text]. */
function awarenessFrame (entries) {
  const update = encoding.createEncoder()
  encoding.writeVarUint(update, entries.length)
  for (const [clientID, clock, state] of entries) {
    encoding.writeVarUint(update, clientID)
    encoding.writeVarUint(update, clock)
    encoding.writeVarString(update, state)
  }
  const frame = encoding.createEncoder()
  encoding.writeVarUint(frame, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(frame, encoding.toUint8Array(update))
  return encoding.toUint8Array(frame)
}

function openForger (url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('open', () => resolve(ws))
    ws.on('error', reject)
  })
}

await run('awareness_forgery', {
  url: { type: 'string' },
  doc: { type: 'string' },
  token: { type: 'string' }
}, async (args) => {
  const params = args.token ? { token: args.token } : {}
  const victim = createClient({ url: args.url, doc: args.doc, name: 'victim', color: '#f00', params })
  const observer = createClient({ url: args.url, doc: args.doc, name: 'observer', color: '#00f', params })
  const forgerUrl = `${args.url}/${args.doc}${args.token ? `?token=${args.token}` : ''}`
  let forger
  try {
    await waitSynced([victim, observer])
    await waitFor(() => peerNames(observer).includes('victim'), 'the observer to see the victim')
    const victimId = victim.ydoc.clientID
    const states = observer.provider.awareness.getStates()

    forger = await openForger(forgerUrl)
    const max = Number.MAX_SAFE_INTEGER
    forger.send(awarenessFrame([[victimId, max, JSON.stringify({ user: { name: 'forged' } })]]))
    forger.send(awarenessFrame([[victimId, max, 'null']]))
    // Sent last on the same socket: once the observer sees it, the forgeries were handled.
    forger.send(awarenessFrame([[FORGER_ID, 1, JSON.stringify({ user: { name: 'forger' } })]]))
    await waitFor(() => peerNames(observer).includes('forger'), "the forger's own state")
    const seenAfterForgery = peerNames(observer)
    if (!states.has(victimId) || seenAfterForgery.includes('forged')) {
      throw new Error(`the forgery reached the observer: ${JSON.stringify(seenAfterForgery)}`)
    }

    // The victim's own changes still reach the observer.
    victim.provider.awareness.setLocalStateField('user', { name: 'victim-2', color: '#f00' })
    await waitFor(() => peerNames(observer).includes('victim-2'), "the victim's next change")

    // A reconnect reuses the client id: the old connection's close frees it.
    victim.provider.disconnect()
    await waitFor(() => !states.has(victimId), 'the victim to leave')
    victim.provider.connect()
    await waitSynced([victim])
    victim.provider.awareness.setLocalStateField('user', { name: 'victim-3', color: '#f00' })
    await waitFor(() => peerNames(observer).includes('victim-3'), 'the victim back, same id')
    if (victim.ydoc.clientID !== victimId) throw new Error('the victim changed its client id')

    // Its own removal (state null) works.
    victim.provider.awareness.setLocalState(null)
    await waitFor(() => !states.has(victimId), "the victim's own removal")
    return { victimId, seenAfterForgery, serverCloses: [...victim.serverCloses, ...observer.serverCloses] }
  } finally {
    forger?.close()
    closeAll([victim, observer])
  }
})
