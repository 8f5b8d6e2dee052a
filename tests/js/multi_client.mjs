// N stock y-websocket clients in one process edit one document concurrently:
// Y.Text 'body', Y.Map 'meta', Y.Array 'items'. Some go offline
// (provider.disconnect()), keep editing, and come back (provider.connect())
// while the others are still editing. At the end every client must hold the
// same content and state vector, and see every other client's awareness.
//
//   node multi_client.mjs --url ws://127.0.0.1:PORT/yjs --doc NAME [--clients 4] [--offline 2] [--seed 1]
//
// --url may list several servers, comma-separated: client i connects to the
// (i mod n)-th, so the clients are spread over the processes of a cluster.
//
// Rounds: 25 with everyone online, 15 with --offline clients disconnected, 10
// while they reconnect; each round every client edits once (see `edit`).
//
// Prints one JSON line: {ok, text, textSha256, meta, items, stateVector, ...}.

import {
  canonical, closeAll, content, createClient, newStats, peerNames, randomInt,
  randomSource, run, sleep, waitFor, waitSynced
} from './lib.mjs'

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45']

/**
 * One client's edit for one round: a text change, then map + array in one
 * transaction, then its cursor in awareness (as an editor moves the caret).
 */
function edit (client, tag, rand) {
  const text = client.text
  let index = randomInt(rand, text.length + 1)
  if (text.length > 30 && rand() < 0.25) {
    index = randomInt(rand, text.length - 3)
    text.delete(index, 1 + randomInt(rand, 3))
  } else {
    text.insert(index, `<${tag}>`)
  }
  client.ydoc.transact(() => {
    client.meta.set(client.name, { last: tag, n: (client.meta.get(client.name)?.n ?? 0) + 1 }) // only this client writes it
    client.meta.set('lastWriter', tag) // every client writes this key: last-writer-wins conflict
    if (rand() < 0.3) client.meta.delete('scratch')
    else client.meta.set('scratch', tag)
    const items = client.items
    if (items.length > 8 && rand() < 0.3) items.delete(randomInt(rand, items.length), 1)
    else items.insert(randomInt(rand, items.length + 1), [tag])
  })
  client.provider.awareness.setLocalStateField('cursor', { index, tag })
}

/** Every client in `clients` makes one edit in the same tick (truly concurrent), then the network runs. */
async function round (clients, phase, r, rand) {
  for (const c of clients) edit(c, `${c.name}.${phase}${r}`, rand)
  await sleep(1 + randomInt(rand, 4))
}

function seesAll (client, names) {
  return canonical(peerNames(client)) === canonical(names)
}

/** Whether `client` holds every peer's current awareness state (name and latest cursor). */
function seesLatestStates (client, peers) {
  const states = client.provider.awareness.getStates()
  return peers.every((p) => canonical(states.get(p.ydoc.clientID)) === canonical(p.provider.awareness.getLocalState()))
}

await run('multi_client', {
  url: { type: 'string' },
  doc: { type: 'string' },
  clients: { type: 'string', default: '4' },
  offline: { type: 'string', default: '2' },
  seed: { type: 'string', default: '1' }
}, async (args) => {
  const n = Number(args.clients)
  const offlineCount = Math.min(Number(args.offline), n - 1)
  const rand = randomSource(Number(args.seed))
  const stats = newStats()
  const clients = []
  for (let i = 0; i < n; i++) {
    const urls = args.url.split(',')
    clients.push(createClient({ url: urls[i % urls.length], doc: args.doc, name: `client-${i}`, color: COLOURS[i % COLOURS.length], stats }))
  }
  const allNames = clients.map((c) => c.name).sort()
  try {
    await waitSynced(clients)
    await waitFor(() => clients.every((c) => seesAll(c, allNames)), 'every client to see every awareness state')

    // Phase a: everyone online.
    for (let r = 0; r < 25; r++) await round(clients, 'a', r, rand)

    // Phase b: the first `offlineCount` clients go offline; everybody keeps editing.
    const offline = clients.slice(0, offlineCount)
    const online = clients.slice(offlineCount)
    for (const c of offline) c.provider.disconnect()
    await waitFor(() => offline.every((c) => !c.provider.wsconnected), 'offline clients to disconnect')
    const onlineNames = online.map((c) => c.name).sort()
    await waitFor(() => online.every((c) => seesAll(c, onlineNames)),
      'online clients to see the offline clients\' awareness removed')
    for (let r = 0; r < 15; r++) await round(clients, 'b', r, rand)
    const offlineDiverged = offline.every((c) => c.text.toString() !== online[0].text.toString())

    // Phase c: reconnect while everyone is still editing.
    for (const c of offline) c.provider.connect()
    for (let r = 0; r < 10; r++) await round(clients, 'c', r, rand)
    await waitSynced(clients)

    const snapshot = () => clients.map((c) => canonical(content(c)))
    await waitFor(() => new Set(snapshot()).size === 1, 'all clients to converge')
    await waitFor(() => clients.every((c) => seesLatestStates(c, clients)),
      'every client to see every peer\'s latest awareness state after reconnect')

    const serverCloses = clients.flatMap((c) => c.serverCloses.map((close) => ({ client: c.name, ...close })))
    return {
      doc: args.doc,
      clients: n,
      offlineClients: offline.map((c) => c.name),
      offlineDiverged,
      converged: true,
      awareness: Object.fromEntries(clients.map((c) => [c.name, peerNames(c)])),
      latestAwarenessSeen: true,
      serverCloses,
      frames: { sent: stats.sent, received: stats.received, firstConnection: stats.connections[0] },
      ...content(clients[0])
    }
  } catch (error) {
    error.details = {
      contents: clients.map((c) => ({ name: c.name, synced: c.provider.synced, ...content(c) })),
      awareness: Object.fromEntries(clients.map((c) => [c.name, peerNames(c)])),
      frames: { sent: stats.sent, received: stats.received }
    }
    throw error
  } finally {
    closeAll(clients)
  }
})
