"""openapi_json.py -- docs/openapi.yaml as a C string of compact JSON, for
the API to serve at /openapi.json (the Makefile compiles it in)."""
import json
import sys

import yaml

spec = yaml.safe_load(open(sys.argv[1]))
text = json.dumps(spec, separators=(",", ":"), ensure_ascii=True)
print("const char docs_openapi[] =")
for i in range(0, len(text), 72):     # cut first, then escape each piece
    piece = text[i:i + 72].replace("\\", "\\\\").replace('"', '\\"')
    print('"' + piece + '"')
print(";")
