// Restoring a version while stock clients type: everyone converges on one text,
// and what they typed after the restore is all there.
//
//   node restore_during_edits.mjs --url ws://HOST:PORT/yjs --http http://HOST:PORT --doc NAME
//
// A writes "base;" and it is kept as version v1 over HTTP. Then A and B type a
// marker every 15 ms while the version is restored over HTTP. After the restore's
// answer each types five more markers, then they stop. Prints one JSON line:
// {ok, textA, textB, server, version, restored, after: markers typed after the answer}.

import { closeAll, createClient, run, sleep, waitFor, waitSynced } from './lib.mjs'

await run('restore_during_edits', {
  url: { type: 'string' },
  http: { type: 'string' },
  doc: { type: 'string' }
}, async (args) => {
  const doc = args.doc
  const serverText = async () => {
    const response = await fetch(`${args.http}/api/docs/${doc}?format=json&text=body`)
    return response.status === 200 ? (await response.json()).text.body : null
  }
  const a = createClient({ url: args.url, doc, name: 'a' })
  const b = createClient({ url: args.url, doc, name: 'b' })
  try {
    await waitSynced([a, b])
    a.text.insert(0, 'base;')
    await waitFor(async () => (await serverText()) === 'base;', 'base to be stored')
    const made = await fetch(`${args.http}/api/docs/${doc}/versions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'v1' })
    })
    if (made.status !== 201) throw new Error(`POST versions answered ${made.status}`)
    const version = await made.json()

    let typing = true
    let n = 0
    const type = async (client) => {
      while (typing) {
        client.text.insert(client.text.length, `<${client.name}${n++}>`)
        await sleep(15)
      }
    }
    const typers = [type(a), type(b)]
    await sleep(300)
    const answer = await fetch(`${args.http}/api/docs/${doc}/versions/${version.id}/restore`, { method: 'POST' })
    if (answer.status !== 200) throw new Error(`restore answered ${answer.status}: ${await answer.text()}`)
    const restored = await answer.json()
    typing = false
    await Promise.all(typers)
    const after = []
    for (let i = 0; i < 5; i++) {
      for (const client of [a, b]) {
        const marker = `[${client.name}${i}]`
        client.text.insert(client.text.length, marker)
        after.push(marker)
      }
      await sleep(15)
    }
    await waitFor(async () => a.text.toString() === b.text.toString() &&
      (await serverText()) === a.text.toString(), 'A, B and the server to converge')
    return { textA: a.text.toString(), textB: b.text.toString(), server: await serverText(), version, restored, after }
  } finally {
    closeAll([a, b])
  }
})
