#!/usr/bin/env bash
# Refreshes the GraphiQL files that the server embeds (assets/graphiql), from the npm registry.
# The server serves them itself so that GraphiQL works with no internet access.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent graphiql@3.8.3 react@18.3.1 react-dom@18.3.1 >/dev/null && for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done)
out=assets/graphiql
cp "$work"/graphiql-3.8.3/package/graphiql.min.{js,css} "$out"/
cp "$work"/react-18.3.1/package/umd/react.production.min.js "$out"/
cp "$work"/react-dom-18.3.1/package/umd/react-dom.production.min.js "$out"/
cp "$work"/graphiql-3.8.3/package/LICENSE "$out"/LICENSE.graphiql
cp "$work"/react-18.3.1/package/LICENSE "$out"/LICENSE.react
# The source maps are not shipped; drop the references so browsers do not ask for them.
sed -i '/sourceMappingURL=/d' "$out"/graphiql.min.js "$out"/graphiql.min.css
