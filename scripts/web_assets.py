"""web_assets.py -- the consoles' static files (web/) as C data, for the
API to serve at /shop, /admin and /static/<name> (the Makefile compiles
them in, as it does the OpenAPI document)."""
import sys
from pathlib import Path

TYPES = {".html": "text/html; charset=utf-8",
         ".js": "application/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}

print("/* Made by scripts/web_assets.py from web/: do not edit. */")
names = []
for i, path in enumerate(sorted(Path(p) for p in sys.argv[1:])):
    data = path.read_bytes()
    body = ",".join(str(b) for b in data)
    print(f"static const unsigned char asset_{i}[] = {{{body}}};")
    names.append((path.name, TYPES[path.suffix], i, len(data)))
print("static const struct web_asset web_assets[] = {")
for name, ctype, i, n in names:
    print(f'\t{{ "{name}", "{ctype}", asset_{i}, {n} }},')
print("};")
