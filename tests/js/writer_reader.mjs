// A stock client that edits Y.Text 'body' concurrently with another client
// (the pycrdt side of tests/test_interop_pycrdt.py) and reads the result.
//
//   node writer_reader.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME
//       [--name node-writer] [--peer py-writer] [--count 20] [--seed 7]
//       [--done node-done] --wait-for py-done
//
// The text is a sequence of `token;` words. Tokens are only ever inserted at
// word boundaries (start, or right after a ';'), so no concurrent insert can
// split a word. Steps: sync; wait until the peer's awareness state (user.name
// == --peer) is visible; insert --count words `n<i>;` at random boundaries
// with a few ms between them; insert `<done>;`; wait until the text holds the
// word `<wait-for>;`. Updates from one client arrive in order, so by then this
// client has all of the peer's words, and the peer, once it sees `<done>;`,
// has all of ours: both texts must be equal.
//
// Prints one JSON line: {ok, text, textSha256, meta, items, stateVector, peers, peersSeen, written}.

import {
  closeAll, content, createClient, newStats, peerNames, randomInt, randomSource,
  recordPeerNames, run, sleep, waitFor, waitSynced
} from './lib.mjs'

/** Indexes where a word may be inserted: 0 and after every ';'. */
function boundaries (text) {
  const result = [0]
  for (let i = 0; i < text.length; i++) if (text[i] === ';') result.push(i + 1)
  return result
}

const hasWord = (text, word) => text === word || text.startsWith(word) || text.includes(`;${word}`)

await run('writer_reader', {
  url: { type: 'string' },
  doc: { type: 'string' },
  name: { type: 'string', default: 'node-writer' },
  peer: { type: 'string' },
  count: { type: 'string', default: '20' },
  seed: { type: 'string', default: '7' },
  done: { type: 'string', default: 'node-done' },
  'wait-for': { type: 'string' }
}, async (args) => {
  if (!args['wait-for']) throw new Error('--wait-for is required')
  const rand = randomSource(Number(args.seed))
  const stats = newStats()
  const client = createClient({ url: args.url, doc: args.doc, name: args.name, color: '#0055aa', stats })
  const everSeen = recordPeerNames(client)
  const written = []
  try {
    await waitSynced([client])
    if (args.peer) await waitFor(() => peerNames(client).includes(args.peer), `awareness of ${args.peer}`)
    for (let i = 0; i < Number(args.count); i++) {
      const word = `n${i};`
      const spots = boundaries(client.text.toString())
      const index = spots[randomInt(rand, spots.length)]
      client.text.insert(index, word)
      client.provider.awareness.setLocalStateField('cursor', { index: index + word.length })
      written.push(word)
      await sleep(2 + randomInt(rand, 4))
    }
    client.text.insert(client.text.length, `${args.done};`)
    const marker = `${args['wait-for']};`
    await waitFor(() => hasWord(client.text.toString(), marker), `the word ${marker}`)
    return {
      doc: args.doc,
      ...content(client),
      peers: peerNames(client), // who is here now (the peer may have left already)
      peersSeen: everSeen(),
      written,
      serverCloses: client.serverCloses,
      frames: { sent: stats.sent, received: stats.received }
    }
  } catch (error) {
    error.details = { ...content(client), peers: peerNames(client) }
    throw error
  } finally {
    closeAll([client])
  }
})
