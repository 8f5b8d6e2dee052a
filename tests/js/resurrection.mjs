// No resurrection: a client that was offline while its document was deleted
// must not bring the deleted content back into the document created afterwards.
//
//   node resurrection.mjs --url ws://127.0.0.1:PORT/yjs --http http://127.0.0.1:PORT --doc NAME
//
// Steps: A and B write and sync. A goes offline (its Y.Doc kept, as an editor's
// IndexedDB copy would be) and edits on. The document is deleted over HTTP; B,
// still connected, is closed with 4410. C, a fresh client, writes the new
// document. A reconnects by itself with everything it had: the server must close
// it with 4410 every time and keep C's content alone.
//
// Prints one JSON line: {ok, serverText, cText, closesA, closesB, ...}.

import { closeAll, createClient, run, sleep, waitFor, waitSynced } from './lib.mjs'

async function serverText (http, doc) {
  const response = await fetch(`${http}/api/docs/${doc}?format=json&text=body`)
  if (response.status !== 200) return null
  return (await response.json()).text.body
}

await run('resurrection', {
  url: { type: 'string' },
  http: { type: 'string' },
  doc: { type: 'string' }
}, async (args) => {
  const a = createClient({ url: args.url, doc: args.doc, name: 'offline' })
  const b = createClient({ url: args.url, doc: args.doc, name: 'online' })
  let c = null
  try {
    await waitSynced([a, b])
    a.text.insert(0, 'old-a;')
    b.text.insert(b.text.length, 'old-b;')
    await waitFor(async () => (await serverText(args.http, args.doc)) === 'old-a;old-b;',
      'the old content to be stored')
    a.provider.disconnect()
    a.text.insert(a.text.length, 'offline-a;')  // built on the old items

    const deleted = await fetch(`${args.http}/api/docs/${args.doc}`, { method: 'DELETE' })
    if (deleted.status !== 204) throw new Error(`DELETE answered ${deleted.status}`)
    await waitFor(() => b.serverCloses.some((close) => close.code === 4410), 'B to be closed with 4410')
    b.provider.destroy()

    c = createClient({ url: args.url, doc: args.doc, name: 'fresh' })
    await waitSynced([c])
    c.text.insert(0, 'new;')
    await waitFor(async () => (await serverText(args.http, args.doc)) === 'new;', 'the new content to be stored')

    const closedBefore = a.serverCloses.length  // its own disconnect
    a.provider.connect()
    await waitFor(() => a.serverCloses.some((close) => close.code === 4410), 'A to be refused with 4410')
    await sleep(1500)  // y-websocket keeps reconnecting: each attempt must be refused
    const text = await serverText(args.http, args.doc)
    if (text !== 'new;') throw new Error(`the server holds ${JSON.stringify(text)}`)
    if (c.text.toString() !== 'new;') throw new Error(`C holds ${JSON.stringify(c.text.toString())}`)
    return {
      serverText: text,
      cText: c.text.toString(),
      aText: a.text.toString(),
      closesA: a.serverCloses.slice(closedBefore),
      closesB: b.serverCloses
    }
  } finally {
    closeAll(c ? [a, c] : [a])
  }
})
