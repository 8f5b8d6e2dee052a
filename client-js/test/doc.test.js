/**
 * Documents against a real server: convergence, awareness, the saved ack,
 * and edits made while the server is down or restarting.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as Y from 'yjs'
import { nextEvent, record, TcpProxy, untilStatus, useServer, waitFor } from './helpers.js'

/** The server's copy of the text `body` of `doc` (GET /api/docs/<doc>?format=json). */
async function serverText (server, doc) {
  const response = await fetch(`${server.httpUrl}/api/docs/${doc}?format=json&text=body`)
  assert.equal(response.status, 200)
  return (await response.json()).text.body
}

function text (ydoc) {
  return ydoc.getText('body').toString()
}

describe('documents', () => {
  const ctx = useServer()

  test("two clients converge and see each other's awareness", async () => {
    const docA = new Y.Doc()
    const docB = new Y.Doc()
    const ann = ctx.clients.make(ctx.server.wsUrl).doc('converge', docA)
    const bob = ctx.clients.make(ctx.server.wsUrl).doc('converge', docB)
    ann.awareness.setLocalStateField('user', { name: 'ann' })
    bob.awareness.setLocalStateField('user', { name: 'bob' })
    await waitFor(() => ann.synced && bob.synced, 'both synced')

    docA.getText('body').insert(0, 'hello ')
    docB.getText('body').insert(0, 'world')
    await waitFor(() => text(docA).length === 11 && text(docA) === text(docB), 'convergence')

    await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.user?.name === 'ann', 'ann seen by bob')
    await waitFor(() => ann.awareness.getStates().get(docB.clientID)?.user?.name === 'bob', 'bob seen by ann')
    ann.awareness.setLocalStateField('cursor', { index: 3 })
    await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.cursor?.index === 3, 'ann\'s cursor')

    // A late joiner gets everyone's state with its subscribe answer.
    const docC = new Y.Doc()
    const cat = ctx.clients.make(ctx.server.wsUrl).doc('converge', docC)
    await waitFor(() => cat.synced, 'cat synced')
    assert.equal(text(docC), text(docA))
    assert.equal(cat.awareness.getStates().get(docA.clientID)?.user?.name, 'ann')
    assert.equal(cat.awareness.getStates().get(docB.clientID)?.user?.name, 'bob')

    // Destroying a provider removes its state for everyone.
    ann.destroy()
    await waitFor(() => !bob.awareness.getStates().has(docA.clientID), 'ann gone for bob')
    await waitFor(() => !cat.awareness.getStates().has(docA.clientID), 'ann gone for cat')
  })

  test("'deleted' fires when the document is deleted, and a new Y.Doc follows the next one", async () => {
    const old = new Y.Doc()
    const client = ctx.clients.make(ctx.server.wsUrl)
    const provider = client.doc('deleted', old)
    await waitFor(() => provider.synced, 'synced')
    old.getText('body').insert(0, 'old')
    await waitFor(async () => (await serverText(ctx.server, 'deleted')) === 'old', 'stored')
    const deleted = nextEvent(provider, 'deleted')
    const answer = await fetch(`${ctx.server.httpUrl}/api/docs/deleted`, { method: 'DELETE' })
    assert.equal(answer.status, 204)
    assert.deepEqual(await deleted, { epoch: 2 })
    old.getText('body').insert(3, ' more')  // no longer synced: nothing is sent
    const fresh = new Y.Doc()
    const next = client.doc('deleted', fresh)
    await waitFor(() => next.synced, 'the new document synced')
    fresh.getText('body').insert(0, 'new')
    await waitFor(async () => (await serverText(ctx.server, 'deleted')) === 'new', 'new stored')
    assert.equal(text(fresh), 'new')
  })

  test("'saved' fires once the server acknowledged every update, and unsyncedChanges is 0 again", async () => {
    const doc = new Y.Doc()
    const provider = ctx.clients.make(ctx.server.wsUrl).doc('saved', doc)
    await waitFor(() => provider.synced, 'synced')
    assert.equal(provider.unsyncedChanges, 0)

    const saved = nextEvent(provider, 'saved')
    doc.getText('body').insert(0, 'one')
    doc.getText('body').insert(3, ' two')
    // Sent at once, acknowledged only after the server's commit.
    assert.equal(provider.unsyncedChanges, 2)
    await saved
    assert.equal(provider.unsyncedChanges, 0)
    assert.equal(await serverText(ctx.server, 'saved'), 'one two')
  })

  test('content made before connecting is pushed; content on the server is pulled', async () => {
    const offline = new Y.Doc()
    offline.getText('body').insert(0, 'written offline')
    const writer = ctx.clients.make(ctx.server.wsUrl).doc('push-pull', offline)
    assert.equal(writer.synced, false)
    await nextEvent(writer, 'saved')
    assert.equal(await serverText(ctx.server, 'push-pull'), 'written offline')

    const fresh = new Y.Doc()
    const reader = ctx.clients.make(ctx.server.wsUrl).doc('push-pull', fresh)
    assert.equal(await nextEvent(reader, 'synced'), true)
    assert.equal(text(fresh), 'written offline')
  })

  test('one provider per document name per client; names are checked', () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const provider = client.doc('once', new Y.Doc())
    assert.throws(() => client.doc('once', new Y.Doc()), /already open/)
    provider.destroy()
    const ydoc = new Y.Doc()
    client.doc('once', ydoc)
    ydoc.destroy() // destroys its provider too
    client.doc('once', new Y.Doc())
    assert.throws(() => client.doc('../etc', new Y.Doc()), TypeError)
    assert.throws(() => client.doc('fine', {}), /needs a Y.Doc/)
  })
})

describe('documents across server failures', () => {
  const ctx = useServer({ perTest: true })

  test('edits made while the server is down arrive after it restarts; nothing acknowledged is lost', async () => {
    const docA = new Y.Doc()
    const docB = new Y.Doc()
    const annClient = ctx.clients.make(ctx.server.wsUrl)
    const ann = annClient.doc('crash', docA)
    const bob = ctx.clients.make(ctx.server.wsUrl).doc('crash', docB)
    await waitFor(() => ann.synced && bob.synced, 'synced')
    docA.getText('body').insert(0, 'acknowledged.')
    await nextEvent(ann, 'saved')

    await ctx.server.kill()
    await untilStatus(annClient, 'disconnected')
    await waitFor(() => !bob.synced, 'bob offline')
    docA.getText('body').insert(docA.getText('body').length, ' from ann.')
    docB.getText('body').insert(0, 'from bob. ')
    assert.ok(ann.unsyncedChanges > 0 && bob.unsyncedChanges > 0)

    await ctx.server.start()
    await waitFor(() => ann.synced && bob.synced && ann.unsyncedChanges === 0 && bob.unsyncedChanges === 0,
      'both resynced and saved')
    await waitFor(() => text(docA) === text(docB), 'convergence')
    for (const part of ['acknowledged.', ' from ann.', 'from bob. ']) assert.ok(text(docA).includes(part), part)
    assert.equal(await serverText(ctx.server, 'crash'), text(docA))

    // Everything acknowledged survives another crash.
    const expected = text(docA)
    await ctx.server.kill()
    await ctx.server.start()
    assert.equal(await serverText(ctx.server, 'crash'), expected)
  })

  test('a graceful restart (close 1012): the provider reconnects, resyncs and announces its awareness again', async () => {
    const docA = new Y.Doc()
    const docB = new Y.Doc()
    const ann = ctx.clients.make(ctx.server.wsUrl).doc('restart', docA)
    const bob = ctx.clients.make(ctx.server.wsUrl).doc('restart', docB)
    const statuses = record(ann, ['status', 'synced'])
    ann.awareness.setLocalStateField('user', { name: 'ann' })
    await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.user?.name === 'ann', 'ann seen')

    await ctx.server.stop()
    // Everyone's cursors are dropped while disconnected.
    await waitFor(() => !bob.awareness.getStates().has(docA.clientID), 'ann dropped while offline')
    await ctx.server.start()

    await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.user?.name === 'ann', 'ann seen again')
    docB.getText('body').insert(0, 'after the restart')
    await waitFor(() => text(docA) === 'after the restart', 'an edit after the restart')
    assert.deepEqual(statuses.filter(([event]) => event === 'synced').map(([, value]) => value), [true, false, true])
    const seen = statuses.filter(([event]) => event === 'status').map(([, value]) => value)
    assert.equal(seen[seen.length - 1], 'connected')
    assert.ok(seen.includes('disconnected'))
  })

  test('a client cut off the network comes back: its edits arrive and its awareness is announced anew', async () => {
    // The server keeps running and remembers ann's awareness clock when her
    // socket drops: only a newer clock brings her state back.
    const proxy = await new TcpProxy(ctx.server.port).start()
    try {
      const docA = new Y.Doc()
      const docB = new Y.Doc()
      const annClient = ctx.clients.make(proxy.wsUrl)
      const ann = annClient.doc('cut', docA)
      const bob = ctx.clients.make(ctx.server.wsUrl).doc('cut', docB)
      ann.awareness.setLocalStateField('user', { name: 'ann' })
      bob.awareness.setLocalStateField('user', { name: 'bob' })
      await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.user?.name === 'ann', 'ann seen')
      await waitFor(() => ann.awareness.getStates().get(docB.clientID)?.user?.name === 'bob', 'bob seen')

      proxy.cut()
      await untilStatus(annClient, 'disconnected')
      await waitFor(() => !bob.awareness.getStates().has(docA.clientID), 'ann removed by the server')
      assert.ok(!ann.awareness.getStates().has(docB.clientID), 'bob dropped while cut off')
      docA.getText('body').insert(0, 'typed while cut off')
      docB.getText('body').insert(0, 'meanwhile: ')
      await proxy.restore()

      await waitFor(() => bob.awareness.getStates().get(docA.clientID)?.user?.name === 'ann', 'ann seen again')
      await waitFor(() => text(docA) === text(docB) && text(docA).length === 30, 'convergence')
      // Ann sees bob again from the server's snapshot, not only at his next renewal
      // (15 s): she forgot his clock with his state when her socket dropped.
      const bobSeen = Date.now()
      await waitFor(() => ann.awareness.getStates().get(docB.clientID)?.user?.name === 'bob', 'bob seen again')
      assert.ok(Date.now() - bobSeen < 5000, `bob came back after ${Date.now() - bobSeen} ms`)
      await waitFor(() => ann.unsyncedChanges === 0, 'ann saved')
      assert.equal(await serverText(ctx.server, 'cut'), text(docA))
    } finally {
      proxy.cut()
    }
  })
})
