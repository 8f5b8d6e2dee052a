// Not run in place: tests/test_client_js_package.py copies it into a temporary
// application outside the repository that installed client-js from its `npm
// pack` tarball, next to yjs and ws, and runs it there, so every import below
// resolves as it would for a user. It reports, as one JSON line, where the app
// and the client each find yjs, every console warning or error (yjs prints
// "Yjs was already imported" when a second copy loads) and, unless argv[2] is
// 'imports-only', a document synced between two clients through the server at
// argv[2].

import { createRequire } from 'node:module'

const [url, timeoutMs] = process.argv.slice(2)
const warnings = []
for (const level of ['warn', 'error']) {
  const original = console[level]
  console[level] = (...args) => {
    warnings.push(args.map(String).join(' '))
    original(...args)
  }
}
const timer = setTimeout(() => finish({ ok: false, error: 'timed out' }), Number(timeoutMs))

function finish (result) {
  clearTimeout(timer)
  console.log(JSON.stringify({ ...result, warnings }))
  process.exit(result.ok ? 0 : 1)
}

try {
  // Imported after console is wrapped (static imports would run first).
  const Y = await import('yjs')
  const { CollabClient } = await import('@collab/client')
  const { WebSocket } = await import('ws')

  const appRequire = createRequire(import.meta.url)
  const clientEntry = appRequire.resolve('@collab/client')
  const where = {
    clientEntry,
    yjsForApp: appRequire.resolve('yjs'),
    yjsForClient: createRequire(clientEntry).resolve('yjs')
  }

  if (url === 'imports-only') finish({ ok: true, ...where })

  const docs = [new Y.Doc(), new Y.Doc()]
  const clients = docs.map(() => new CollabClient(url, { WebSocket }))
  const providers = clients.map((client, i) => client.doc('packaged', docs[i]))
  const saved = new Promise((resolve) => providers[0].once('saved', resolve))
  docs[0].getText('body').insert(0, 'hello from the tarball')
  await saved
  while (docs[1].getText('body').toString() !== 'hello from the tarball') {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const text = docs[1].getText('body')
  for (const client of clients) client.close()
  finish({ ok: true, ...where, text: text.toString(), textIsAppsYText: text instanceof Y.Text })
} catch (error) {
  finish({ ok: false, error: String(error?.stack ?? error) })
}
