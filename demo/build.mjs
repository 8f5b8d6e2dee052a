// Build the demo into collab/static/ (committed, so `pip install` + `collab serve`
// serves it without Node): two pages, each one ES module bundle (the CodeMirror
// page at / and the Tiptap page at /tiptap), their stylesheet and icon.
//
//   node build.mjs                 # writes ../collab/static/
//   node build.mjs --outdir DIR    # writes DIR (the test compares it with the committed copy)
//
// The output depends only on the sources and the locked package versions, so a
// rebuild that differs from the committed files means someone forgot to rebuild.

import { copyFile, mkdir, realpath } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({ options: { outdir: { type: 'string' } } })
const outdir = values.outdir ?? join(here, '..', 'collab', 'static')

// @collab/client is linked from ../client-js: resolve its imports (yjs above all)
// from here, so the bundle holds one copy of each package, at this lockfile's version.
const clientDir = await realpath(join(here, '..', 'client-js'))
const oneCopy = {
  name: 'one-copy',
  setup (b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (!args.importer.startsWith(clientDir) || args.pluginData?.fromHere) return undefined
      return b.resolve(args.path, { kind: args.kind, resolveDir: here, pluginData: { fromHere: true } })
    })
  }
}

// Each page is a bundle of its own (no shared chunks): source file -> bundle name.
const PAGES = { 'main.js': 'demo.js', 'tiptap.js': 'tiptap.js' }

await mkdir(outdir, { recursive: true })
for (const [source, bundle] of Object.entries(PAGES)) {
  await build({
    plugins: [oneCopy],
    entryPoints: [join(here, 'src', source)],
    outfile: join(outdir, bundle),
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning'
  })
}
for (const name of ['index.html', 'tiptap.html', 'demo.css', 'favicon.svg']) {
  await copyFile(join(here, 'src', name), join(outdir, name))
}
