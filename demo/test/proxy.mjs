// A TCP proxy in front of the server that the browser test can cut and restore:
// a page loaded through it loses its socket as it would when the server or the
// network goes away (connections broken, new ones dropped at once), while pages
// connected directly carry on.

import net from 'node:net'

/**
 * Listen on a free port of 127.0.0.1 and pass every connection on to `target`.
 *
 * @param {URL} target the server's http:// address
 * @returns {Promise<{url: string, cut: () => void, restore: () => void, close: () => Promise<void>}>}
 *   `url` is the proxy's http:// address; cut() breaks every connection and drops new
 *   ones until restore(); close() stops listening.
 */
export async function startProxy (target) {
  let cut = false
  const links = new Set()
  const server = net.createServer((down) => {
    if (cut) {
      down.destroy()
      return
    }
    const up = net.connect(Number(target.port), target.hostname)
    links.add(down)
    links.add(up)
    const end = () => {
      for (const socket of [down, up]) {
        socket.destroy()
        links.delete(socket)
      }
    }
    for (const socket of [down, up]) {
      socket.on('error', end)
      socket.on('close', end)
    }
    down.pipe(up)
    up.pipe(down)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut () {
      cut = true
      for (const socket of links) socket.destroy()
      links.clear()
    },
    restore () {
      cut = false
    },
    close () {
      this.cut()
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}
