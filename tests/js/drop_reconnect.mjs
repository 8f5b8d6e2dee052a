// A client whose socket drops abruptly (no close frame, no awareness
// goodbye) reconnects by itself; its next awareness change must reach the
// other client at once, as with any y-protocols peer.
//
//   node drop_reconnect.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME [--awareness-wait-ms 5000]
//
// Steps: clients A and B sync and see each other. A's socket is terminated
// (`ws.terminate()`: TCP closed, nothing sent). While A is down, both edit
// the text. B must see A's awareness state removed by the server. A
// reconnects (y-websocket's own backoff) and, like an editor whose caret
// moves, changes its awareness state once. B must see that state within
// --awareness-wait-ms, far below the 15 s after which y-protocols renews a
// local state by itself. Both texts must converge.
//
// Prints one JSON line: {ok, text, awarenessSeenAfterMs, clocks, ...}.

import {
  canonical, closeAll, content, createClient, newStats, peerNames, run, waitFor, waitSynced
} from './lib.mjs'

await run('drop_reconnect', {
  url: { type: 'string' },
  doc: { type: 'string' },
  'awareness-wait-ms': { type: 'string', default: '5000' }
}, async (args) => {
  const stats = newStats()
  const a = createClient({ url: args.url, doc: args.doc, name: 'dropper', color: '#aa0000', stats })
  const b = createClient({ url: args.url, doc: args.doc, name: 'watcher', color: '#00aa00' })
  const clocks = () => ({
    aLocal: a.provider.awareness.meta.get(a.ydoc.clientID)?.clock,
    aAsSeenByB: b.provider.awareness.meta.get(a.ydoc.clientID)?.clock,
    aStateSeenByB: b.provider.awareness.getStates().get(a.ydoc.clientID) ?? null
  })
  try {
    await waitSynced([a, b])
    await waitFor(() => peerNames(b).includes('dropper') && peerNames(a).includes('watcher'), 'A and B to see each other')
    const clocksBefore = clocks()

    a.provider.ws.terminate()
    a.text.insert(0, 'offline-a;')
    b.text.insert(0, 'online-b;')
    await waitFor(() => !peerNames(b).includes('dropper'), 'B to see A\'s awareness removed after the drop')
    await waitFor(() => stats.connections.length >= 2 && a.provider.synced, 'A to reconnect and sync')
    const clocksAfterReconnect = clocks()

    a.provider.awareness.setLocalStateField('cursor', { index: 3 })
    const changed = Date.now()
    const wait = Number(args['awareness-wait-ms'])
    try {
      await waitFor(() => canonical(b.provider.awareness.getStates().get(a.ydoc.clientID)) ===
        canonical(a.provider.awareness.getLocalState()), 'B to see A\'s awareness change after the reconnect', wait)
    } catch (error) {
      error.details = { clocksBefore, clocksAfterReconnect, clocksNow: clocks() }
      throw error
    }
    const awarenessSeenAfterMs = Date.now() - changed
    await waitFor(() => canonical(content(a)) === canonical(content(b)), 'A and B to converge')
    return {
      doc: args.doc,
      awarenessSeenAfterMs,
      clocks: { before: clocksBefore, afterReconnect: clocksAfterReconnect, end: clocks() },
      closeEventsA: a.serverCloses,
      ...content(a)
    }
  } finally {
    closeAll([a, b])
  }
})
