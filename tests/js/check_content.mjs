// One fresh stock client joins a document, syncs, and reports what it holds.
// Used after a server restart to show the content was persisted.
//
//   node check_content.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME [--token JWT]
//
// Prints one JSON line: {ok, text, textSha256, meta, items, stateVector, peers}.

import { closeAll, content, createClient, newStats, peerNames, run, waitSynced } from './lib.mjs'

await run('check_content', {
  url: { type: 'string' },
  doc: { type: 'string' },
  name: { type: 'string', default: 'checker' },
  token: { type: 'string' }
}, async (args) => {
  const stats = newStats()
  const params = args.token ? { token: args.token } : {}
  const client = createClient({ url: args.url, doc: args.doc, name: args.name, color: '#888888', stats, params })
  try {
    await waitSynced([client])
    return {
      doc: args.doc,
      ...content(client),
      peers: peerNames(client),
      serverCloses: client.serverCloses,
      frames: { sent: stats.sent, received: stats.received, firstConnection: stats.connections[0] }
    }
  } finally {
    closeAll([client])
  }
})
