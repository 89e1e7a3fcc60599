#!/usr/bin/env bash
# Regenerates docs/ui.md and its pictures: runs the browser tests (scripts/ui-test.sh), which
# write every page at 375 and 1440 px in light and dark to target/ui-screenshots, then copies
# the main ones to docs/ui/ and lists every page with its four screenshots' names.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ui-test.sh
SHOTS=target/ui-screenshots
mkdir -p docs/ui
rm -f docs/ui/*.png
# The pictures docs/ui.md and the README show: page, width, scheme, caption.
MAIN=(
  "connections 1440 light|The connections, with their status in words"
  "connections 375 dark|The same on a phone, dark"
  "wizard-provider 1440 light|Add connection: the provider catalog, searchable"
  "wizard-configure 1440 light|Configure: fields of the kind, required ones marked, Test before saving"
  "connection-edit 1440 dark|Edit: the saved password stays saved unless changed"
  "connection-failed 1440 light|A failed test, in words, with its details"
  "oauth-connected 1440 light|An OAuth connection after Connect, with its renewal"
  "mcp-tools 1440 dark|An MCP server's tools and the gateway URL to give an agent"
  "deliveries 1440 light|Webhook deliveries, with Replay"
  "tokens-created 375 light|A new API token, shown once"
)
{
  echo "# The web UI"
  echo
  echo "Server-rendered pages at \`/\` of a running Patchbay: log in with an API token (\`patchbay serve\`"
  echo "prints the first one). Everything works with scripting off; the one small script shows results in"
  echo "place, opens OAuth in a popup and puts secret fields behind *Change*."
  echo
  echo "These pictures are written by the browser tests (\`scripts/ui-test.sh\`, run by \`scripts/test.sh\`)"
  echo "and copied here by \`scripts/ui-screenshots.sh\`, which also writes this page."
  echo
  for entry in "${MAIN[@]}"; do
    spec="${entry%%|*}"
    caption="${entry#*|}"
    read -r page width scheme <<<"$spec"
    file="$page-$width-$scheme.png"
    cp "$SHOTS/$file" "docs/ui/$file"
    echo "## $caption"
    echo
    echo "![$caption ($width px, $scheme)](ui/$file)"
    echo
  done
  echo "## Every page"
  echo
  echo "Each page the tests visit is checked with axe-core (WCAG 2.2 AA) and photographed at 375 and"
  echo "1440 px in light and dark; after \`scripts/ui-test.sh\` they are in \`target/ui-screenshots/\`:"
  echo
  for f in "$SHOTS"/*-1440-light.png; do
    name=$(basename "$f" -1440-light.png)
    echo "- \`$name\`: \`$name-1440-light.png\`, \`$name-1440-dark.png\`, \`$name-375-light.png\`, \`$name-375-dark.png\`"
  done
} >docs/ui.md
echo "wrote docs/ui.md and $(ls docs/ui | wc -l) pictures in docs/ui/" >&2
