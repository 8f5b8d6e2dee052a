// A stock y-websocket client alone in a document, left quiet: it must stay on one
// socket (y-websocket reconnects after 30 s without hearing a message, and a
// ping is not one), and its next edit must still reach the server.
//
//   node lone_client.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME [--quiet-ms 34000]
//
// Prints one JSON line: {ok, connects, closes, text}.

import { closeAll, createClient, run, sleep, waitFor, waitSynced } from './lib.mjs'

await run('lone_client', {
  url: { type: 'string' },
  doc: { type: 'string' },
  'quiet-ms': { type: 'string', default: '34000' }
}, async (args) => {
  const lone = createClient({ url: args.url, doc: args.doc, name: 'lone', color: '#123456' })
  let connects = 0
  lone.provider.on('status', ({ status }) => { if (status === 'connected') connects++ })
  try {
    await waitSynced([lone])
    lone.text.insert(0, 'before;')
    await sleep(Number(args['quiet-ms']))
    lone.text.insert(lone.text.length, 'after;')
    await waitFor(() => lone.provider.wsconnected, 'still connected')
    return { connects, closes: lone.serverCloses, text: lone.text.toString() }
  } finally {
    await sleep(500) // the last edit on its way
    closeAll([lone])
  }
})
