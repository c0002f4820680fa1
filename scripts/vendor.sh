#!/usr/bin/env bash
# Copies the browser builds of the front-end libraries (chat page; the profile page's chart), versions pinned in package.json,
# from node_modules into static/vendor/, which is committed: the server needs no Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund >/dev/null
dest=static/vendor
rm -rf "$dest" && mkdir -p "$dest/marked" "$dest/dompurify" "$dest/highlight"
# The chat page's modules import the libraries' ES module builds. Source maps too: the files name
# them, and collectstatic's manifest storage fails on a missing one.
cp node_modules/marked/lib/marked.esm.js node_modules/marked/lib/marked.esm.js.map node_modules/marked/LICENSE "$dest/marked/"
cp node_modules/dompurify/dist/purify.es.mjs node_modules/dompurify/dist/purify.es.mjs.map node_modules/dompurify/LICENSE "$dest/dompurify/"
hl=node_modules/@highlightjs/cdn-assets
cp "$hl/es/highlight.min.js" "$hl/LICENSE" "$dest/highlight/"
cp "$hl/styles/github.min.css" "$hl/styles/github-dark.min.css" "$dest/highlight/"
# The profile page's usage chart.
mkdir -p "$dest/chart.js"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map node_modules/chart.js/LICENSE.md "$dest/chart.js/"
node -e 'const p=require("./package-lock.json").packages;for(const [k,v] of Object.entries(p)){if(k)console.log(k.replace("node_modules/",""), v.version)}' > "$dest/VERSIONS"
echo "==> static/vendor refreshed:"; cat "$dest/VERSIONS"
