// Embedded JSON objects must reach every client as their writer wrote them, keys
// in the writer's order (what a stock client's JSON.stringify shows).
//
//   node fidelity.mjs --mode write --url ws://127.0.0.1:PORT/yjs --doc NAME
//       A reader connects and syncs; a writer connects and writes objects of 12+
//       keys (Y.Map values, Y.Array entries, a text format attribute and an embed),
//       many small transactions back to back so the server merges them; once the
//       reader holds the same content, a third client joins. Prints
//       {ok, writer, reader, joiner}: each a view (below).
//   node fidelity.mjs --mode read --url ... --doc NAME    one fresh client: {ok, view}
//   node fidelity.mjs --mode file --file PATH             a Y.Doc from the update in PATH
//
// A view keeps each embedded value's own key order: {meta: {key: JSON.stringify(value)}
// (map keys sorted), items: [JSON.stringify(entry)], delta: JSON.stringify(text delta)}.

import { readFileSync } from 'node:fs'
import { Y, canonical, closeAll, createClient, run, waitFor, waitSynced } from './lib.mjs'

/** Object number `n`: 12 keys in an order no sort produces, and nested ones. */
function record (n) {
  const words = ['zulu', 'alpha', 'mike', 'bravo', 'yankee', 'charlie', 'xray', 'delta', 'whiskey', 'echo', 'victor', 'foxtrot']
  const value = {}
  for (let i = 0; i < words.length; i++) value[words[(i * 5 + n) % words.length]] = i * 100 + n
  value.nested = { zz: n, aa: [{ yy: 1, bb: 2, mm: 3 }], kk: { q: true, c: null } }
  return value
}

function view (ydoc) {
  const meta = ydoc.getMap('meta')
  return {
    meta: Object.fromEntries([...meta.keys()].sort().map((key) => [key, JSON.stringify(meta.get(key))])),
    items: ydoc.getArray('items').toArray().map((entry) => JSON.stringify(entry)),
    delta: JSON.stringify(ydoc.getText('body').toDelta())
  }
}

/** The content, whatever the key order: does a client have everything the writer wrote? */
const content = (ydoc) => canonical({
  meta: ydoc.getMap('meta').toJSON(),
  items: ydoc.getArray('items').toJSON(),
  delta: ydoc.getText('body').toDelta()
})
const sameContent = (a, b) => content(a) === content(b)

function write (client) {
  const { ydoc, meta, items, text } = client
  // Twenty transactions sent back to back: the server gets several in one turn and
  // merges them into one broadcast.
  for (let n = 0; n < 20; n++) meta.set(`record-${n}`, record(n))
  items.push([record(100), record(101), record(102)]) // one item holding three values
  items.insert(1, [record(103)]) // splits it
  ydoc.transact(() => {
    text.insert(0, 'hello world')
    text.format(0, 5, { link: { href: 'https://example.com', title: 'x', rel: 'nofollow', target: '_blank' } })
    text.insertEmbed(11, { src: 'a.png', width: 10, alt: 'a', height: 5, zoom: 1.5 })
  })
  meta.delete('record-3') // deleted content: garbage to collect at compaction
  items.delete(3, 1)
}

await run('fidelity', {
  mode: { type: 'string' },
  url: { type: 'string' },
  doc: { type: 'string' },
  file: { type: 'string' }
}, async (args) => {
  if (args.mode === 'file') {
    const ydoc = new Y.Doc()
    Y.applyUpdate(ydoc, new Uint8Array(readFileSync(args.file)))
    return { view: view(ydoc) }
  }
  if (args.mode === 'read') {
    const client = createClient({ url: args.url, doc: args.doc, name: 'checker', color: '#888' })
    try {
      await waitSynced([client])
      return { view: view(client.ydoc), serverCloses: client.serverCloses }
    } finally {
      closeAll([client])
    }
  }
  if (args.mode !== 'write') throw new Error('--mode is write, read or file')
  const clients = []
  try {
    const reader = createClient({ url: args.url, doc: args.doc, name: 'reader', color: '#a00' })
    clients.push(reader)
    await waitSynced([reader])
    const writer = createClient({ url: args.url, doc: args.doc, name: 'writer', color: '#0a0' })
    clients.push(writer)
    await waitSynced([writer])
    write(writer)
    await waitFor(() => sameContent(reader.ydoc, writer.ydoc), 'the reader to hold what the writer wrote')
    const joiner = createClient({ url: args.url, doc: args.doc, name: 'joiner', color: '#00a' })
    clients.push(joiner)
    await waitSynced([joiner])
    await waitFor(() => sameContent(joiner.ydoc, writer.ydoc), 'the joiner to hold what the writer wrote')
    return {
      writer: view(writer.ydoc),
      reader: view(reader.ydoc),
      joiner: view(joiner.ydoc),
      serverCloses: clients.flatMap((c) => c.serverCloses)
    }
  } finally {
    closeAll(clients)
  }
})
