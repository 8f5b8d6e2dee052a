// @hocuspocus/provider (the one Tiptap uses) against collab, one scenario per run:
//
//   node hocuspocus.mjs --scenario NAME --url ws://127.0.0.1:PORT [--docs a,b] [options]
//
// edit       --clients N providers per document edit every document in --docs and
//            must converge, every provider's unsyncedChanges back at 0 (saved).
//            --shared: each client puts all its documents on one socket
//            (HocuspocusProviderWebsocket), else one socket per provider.
// auth       one provider with --token: {scope} or {denied: reason}, and the text it
//            holds after a while (nothing may leak to a denied one); with --edit it
//            then types, and reports its unsyncedChanges a while later.
// stateless  two providers on --docs[0]; the first sends --payload; both report the
//            stateless messages they get (the hook's reply, its broadcast).
// idle       one provider sits idle for --idle-ms (past the provider's 30 s message
//            timeout): it must not have been disconnected.
// reconnect  a provider types --text, prints {"phase": "saved"} once it is saved,
//            then waits for the server to go away and come back (the test kills it
//            with -9 and restarts it on the same port), types --more and reports.
//
// Prints one JSON line with {ok, ...} (lib.mjs `run`).

import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { run, sleep, waitFor } from './lib.mjs'

/** A WebSocket class that counts the sockets opened, for the multiplexing check. */
function countingSockets (counts) {
  return class extends WebSocket {
    constructor (...args) {
      super(...args)
      counts.opened += 1
    }
  }
}

function makeSocket (url, counts, extra = {}) {
  return new HocuspocusProviderWebsocket({
    url,
    WebSocketPolyfill: countingSockets(counts),
    delay: 100,
    minDelay: 100,
    maxDelay: 500,
    ...extra
  })
}

/** A provider for `name` on `socket` (shared) or on a socket of its own (`url`). */
function makeProvider ({ name, url, socket, token = null, counts }) {
  const document = new Y.Doc()
  const seen = { scope: null, denied: null, stateless: [], closes: [], disconnects: 0 }
  const options = {
    name,
    document,
    token,
    onAuthenticated: ({ scope }) => { seen.scope = scope },
    onAuthenticationFailed: ({ reason }) => { seen.denied = reason },
    onStateless: ({ payload }) => { seen.stateless.push(payload) },
    onClose: ({ event }) => { seen.closes.push({ code: event.code, reason: String(event.reason ?? '') }) },
    onDisconnect: () => { seen.disconnects += 1 }
  }
  let provider
  if (socket) {
    provider = new HocuspocusProvider({ ...options, websocketProvider: socket })
    provider.attach()
  } else {
    provider = new HocuspocusProvider({
      ...options,
      websocketProvider: makeSocket(url, counts)
    })
    provider.attach()
  }
  provider.setAwarenessField('user', { name: `${name}-${document.clientID}` })
  return { provider, document, text: document.getText('body'), seen, name }
}

const settled = (p) => p.provider.isSynced && p.provider.unsyncedChanges === 0

async function edit (args, counts) {
  const docs = args.docs.split(',')
  const clients = Number(args.clients)
  const all = []
  for (let c = 0; c < clients; c++) {
    const socket = args.shared ? makeSocket(args.url, counts) : null
    for (const name of docs) all.push({ client: c, ...makeProvider({ name, url: args.url, socket, token: args.token ?? null, counts }) })
  }
  await waitFor(() => all.every((p) => p.provider.isSynced), 'every provider synced')
  for (const p of all) p.text.insert(p.text.length, `<${p.client}:${p.name}>`)
  for (const p of all) p.text.insert(0, `[${p.client}]`)
  const texts = () => Object.fromEntries(docs.map((name) => [name, all.filter((p) => p.name === name).map((p) => p.text.toString())]))
  await waitFor(() => Object.values(texts()).every((ts) => new Set(ts).size === 1 && ts[0].length > 0), 'every document to converge')
  await waitFor(() => all.every(settled), 'every provider to have no unsynced changes')
  const result = {
    texts: Object.fromEntries(Object.entries(texts()).map(([k, v]) => [k, v[0]])),
    scopes: all.map((p) => p.seen.scope),
    unsynced: all.map((p) => p.provider.unsyncedChanges),
    closes: all.flatMap((p) => p.seen.closes),
    socketsOpened: counts.opened
  }
  for (const p of all) p.provider.destroy()
  return result
}

async function auth (args, counts) {
  const p = makeProvider({ name: args.docs.split(',')[0], url: args.url, token: args.token ?? null, counts })
  await waitFor(() => p.seen.scope !== null || p.seen.denied !== null, 'an answer to the token')
  await sleep(Number(args.wait))
  const result = { scope: p.seen.scope, denied: p.seen.denied, text: p.text.toString(), synced: p.provider.isSynced }
  if (args.edit) {
    p.text.insert(0, args.edit)
    await sleep(Number(args.wait))
    result.unsyncedAfterEdit = p.provider.unsyncedChanges
  }
  result.closes = p.seen.closes
  p.provider.destroy()
  return result
}

async function stateless (args, counts) {
  const name = args.docs.split(',')[0]
  const a = makeProvider({ name, url: args.url, counts })
  const b = makeProvider({ name, url: args.url, counts })
  await waitFor(() => a.provider.isSynced && b.provider.isSynced, 'both synced')
  a.provider.sendStateless(args.payload)
  await waitFor(() => a.seen.stateless.length >= Number(args.expectA) && b.seen.stateless.length >= Number(args.expectB),
    'the stateless answers')
  await sleep(300) // anything more that would come
  const result = { a: a.seen.stateless, b: b.seen.stateless }
  a.provider.destroy()
  b.provider.destroy()
  return result
}

async function idle (args, counts) {
  const p = makeProvider({ name: args.docs.split(',')[0], url: args.url, counts })
  await waitFor(() => p.provider.isSynced, 'synced')
  const opened = counts.opened
  await sleep(Number(args['idle-ms']))
  const result = { disconnects: p.seen.disconnects, socketsOpened: counts.opened - opened, synced: p.provider.isSynced }
  p.provider.destroy()
  return result
}

async function reconnect (args, counts) {
  const p = makeProvider({ name: args.docs.split(',')[0], url: args.url, counts })
  await waitFor(() => settled(p), 'synced')
  p.text.insert(p.text.length, args.text)
  await waitFor(() => settled(p), 'the first text saved')
  process.stdout.write(JSON.stringify({ phase: 'saved' }) + '\n')
  await waitFor(() => p.seen.disconnects > 0, 'the server to go away', 60000)
  await waitFor(() => settled(p) && p.provider.isAuthenticated, 'the server to come back', 60000)
  p.text.insert(p.text.length, args.more)
  await waitFor(() => settled(p), 'the second text saved')
  const result = { text: p.text.toString(), disconnects: p.seen.disconnects }
  p.provider.destroy()
  return result
}

const SCENARIOS = { edit, auth, stateless, idle, reconnect }

await run('hocuspocus', {
  scenario: { type: 'string' },
  url: { type: 'string' },
  docs: { type: 'string', default: 'hp-doc' },
  clients: { type: 'string', default: '2' },
  shared: { type: 'boolean', default: false },
  token: { type: 'string' },
  wait: { type: 'string', default: '500' },
  edit: { type: 'string' },
  payload: { type: 'string', default: 'hello' },
  expectA: { type: 'string', default: '1' },
  expectB: { type: 'string', default: '0' },
  'idle-ms': { type: 'string', default: '35000' },
  text: { type: 'string', default: 'first ' },
  more: { type: 'string', default: 'second' }
}, async (args) => {
  const counts = { opened: 0 }
  return { scenario: args.scenario, ...(await SCENARIOS[args.scenario](args, counts)) }
})
