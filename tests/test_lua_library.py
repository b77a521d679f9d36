"""
test_lua_library.py -- the build refuses a checkout library out of step
with the C (scripts/lua_library.py): a key spelled out in the Lua, an RK
name shared/redis.h lacks, a function protocol.h does not name, a call
to a function of a later file.  No processes: the script alone.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = [ROOT / "shared/lua" / f for f in
       ("common.lua", "auth.lua", "protocol.lua", "catalog.lua")]


def build(tmp_path, change=None):
    files = []
    for f in LUA:
        text = f.read_text()
        if change and f.name == change[0]:
            text = change[1](text)
        out = tmp_path / f.name
        out.write_text(text)
        files.append(str(out))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/lua_library.py"),
         str(ROOT / "shared/redis.h"), str(ROOT / "shared/protocol.h"),
         *files], capture_output=True, text=True)


def test_the_library_as_it_is_builds(tmp_path):
    r = build(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "local RK = {" in r.stdout and "STREAM = 'checkout:jobs'" in r.stdout


def test_a_spelled_out_key_is_refused(tmp_path):
    r = build(tmp_path, ("catalog.lua", lambda t: t.replace(
        "RK.PROCS", "'procs'", 1)))
    assert r.returncode == 1 and "'procs' spelled out" in r.stderr, r.stderr


def test_an_unknown_key_name_is_refused(tmp_path):
    r = build(tmp_path, ("protocol.lua", lambda t: t.replace(
        "RK.GATE_STOCK", "RK.GATE_STOK", 1)))
    assert r.returncode == 1 and "RK.GATE_STOK" in r.stderr, r.stderr


def test_a_function_the_c_does_not_name_is_refused(tmp_path):
    extra = "\nredis.register_function('nobody_calls', function() end)\n"
    r = build(tmp_path, ("auth.lua", lambda t: t + extra))
    assert r.returncode == 1 and "nobody_calls" in r.stderr, r.stderr


def test_a_call_into_a_later_file_is_refused(tmp_path):
    r = build(tmp_path, ("common.lua", lambda t: t + "\nlocal function f()"
                         "\n  return settle(1, 2, 3)\nend\n"))
    assert r.returncode == 1 and "settle is defined in a later" in r.stderr
