#!/usr/bin/env bash
# readme_config.sh -- refresh the README's variable table from
# `shopctl config-doc` (the table in shared/config.c is the source).
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(ENV_FILE=/dev/null build/shopctl config-doc)
python3 - "$table" <<'PY'
import re, sys
path = "README.md"
text = open(path).read()
begin = "<!-- config:begin (build/shopctl config-doc) -->\n"
end = "<!-- config:end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + sys.argv[1] + "\n" + text[b:])
PY
