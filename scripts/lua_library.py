#!/usr/bin/env python3
"""
lua_library.py -- the checkout library (shared/lua/*.lua) as one Redis
function library, compiled into the programs as a C string, and the
checks that keep it in step with the C.

Usage: lua_library.py shared/redis.h shared/protocol.h FILE.lua... > out.h

The library is: the shebang, an RK table made from shared/redis.h's
RK_ defines (key names are spelled there once), then the files in the
order given.  The build fails (exit 1, saying why) when:
  - a Lua file spells out a key name that redis.h defines, or uses an
    RK name that redis.h does not define;
  - a function named in protocol.h (FN_) is not registered in the Lua,
    or one registered is not named there;
  - a file calls a local function defined only in a later file (the
    library would load and then fail at the call).
"""
import re
import sys


def fail(msg):
    sys.stderr.write(f"lua_library: {msg}\n")
    sys.exit(1)


def code_lines(text):
    """(number, line) of the lines outside comments."""
    out, block = [], False
    for n, line in enumerate(text.split("\n"), 1):
        if block:
            if "]]" in line:
                block = False
            continue
        if line.lstrip().startswith("--[["):
            block = "]]" not in line
            continue
        out.append((n, re.sub(r"--.*$", "", line)))
    return out


def main(redis_h, protocol_h, files):
    keys = dict(re.findall(r'#define RK_(\w+)\s+"([^"]+)"',
                           open(redis_h).read()))
    fns = set(re.findall(r'#define FN_\w+\s+"(\w+)"',
                         open(protocol_h).read()))
    registered, defined = set(), {}
    sources = [(f, open(f).read()) for f in files]
    for i, (f, text) in enumerate(sources):
        for name in re.findall(r"^local function (\w+)", text, re.M):
            defined.setdefault(name, i)
    for i, (f, text) in enumerate(sources):
        for n, line in code_lines(text):
            for lit in re.findall(r"'([^']*)'", line):
                if lit in keys.values():
                    fail(f"{f}:{n}: key '{lit}' spelled out: use "
                         f"RK.{[k for k, v in keys.items() if v == lit][0]}")
            for name in re.findall(r"\bRK\.(\w+)", line):
                if name not in keys:
                    fail(f"{f}:{n}: RK.{name}: no RK_{name} in {redis_h}")
            for name in re.findall(r"\b(\w+)\s*\(", line):
                if defined.get(name, i) > i:
                    fail(f"{f}:{n}: {name} is defined in a later file")
        registered |= set(re.findall(
            r"register_function\s*[({]\s*(?:function_name\s*=\s*)?'(\w+)'",
            text))
    if fns - registered:
        fail(f"named in {protocol_h} but not registered: "
             f"{sorted(fns - registered)}")
    if registered - fns:
        fail(f"registered but not named in {protocol_h}: "
             f"{sorted(registered - fns)}")
    lib = ["#!lua name=checkout",
           f"-- The key names, from {redis_h} (generated).",
           "local RK = {"]
    lib += [f"  {k} = '{v}'," for k, v in sorted(keys.items())]
    lib += ["}", ""]
    for f, text in sources:
        lib += [f"-- {f}", text.rstrip("\n"), ""]
    print("const char protocol_library[] =")
    for line in "\n".join(lib).split("\n"):
        print('"' + line.replace("\\", "\\\\").replace('"', '\\"') + '\\n"')
    print(";")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        fail("usage: lua_library.py redis.h protocol.h FILE.lua...")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
