#!/usr/bin/env bash
#
# deps.sh -- install what building, running and testing need, once.
#
# Debian packages come from apt-get; SecantusDB (the embedded MongoDB-wire
# server) and the Python test tools go into a project-local virtualenv at
# .venv, pinned in requirements.txt.  A second run finds everything in
# place and returns in well under a second: the stamp files record what
# was installed and from which requirements.
#
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PACKAGES="kore libhiredis-dev libmongoc-dev libbson-dev libjansson-dev
libjwt-dev libsodium-dev libpq-dev libcurl4-openssl-dev pkg-config
redis-server redis-tools python3-venv wrk nginx-light openssl
chromium chromium-driver"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done

if [ -n "$missing" ]; then
	echo "deps: installing Debian packages:$missing" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The Debian package enables a system-wide redis-server unit; we run our
# own per project, so the packaged one is not started here.

# SecantusDB's Rust server, the default database (docs/DATABASE.md says
# why): built once into .tools/bin, from the crate's own Cargo.lock,
# with the toolchain it needs (rustup, rustc 1.98): about 7 minutes on 2
# CPUs, then never again.  SECANTUS_SERVER=py skips it; if the build
# fails, the Python server (in .venv) is used instead, and said so.
rs_bin="$top/.tools/bin/secantusd-rs"
if [ "${SECANTUS_SERVER:-rs}" != py ] && [ ! -x "$rs_bin" ]; then
	echo "deps: building secantusd-rs, SecantusDB's Rust server (once," \
	    "about 7 minutes)" >&2
	if ! { rustup toolchain install 1.98 --profile minimal >/dev/null &&
	    cargo +1.98 install --quiet --locked \
	    secantus-mdb@0.5.3-beta.196 --root "$top/.tools"; }; then
		echo "deps: WARNING: building secantusd-rs failed; the Python" \
		    "server will be used (slower: docs/DATABASE.md)" >&2
	fi
fi

# The API documentation page's script: redoc's standalone bundle, from
# the npm registry (pinned, checked against its published hash), served
# by the API itself at /docs: no CDN at run time.
redoc_dir="$top/.tools/redoc"
redoc_tgz=redoc-2.5.4.tgz
redoc_sha=44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e
if [ ! -f "$redoc_dir/redoc.standalone.js" ]; then
	echo "deps: fetching redoc 2.5.4 (the /docs page) from npm" >&2
	mkdir -p "$redoc_dir"
	# npm pack, or the same tarball straight from the registry.
	(cd "$redoc_dir" && { { command -v npm >/dev/null &&
	    npm pack --silent redoc@2.5.4 >/dev/null; } ||
	    curl -fsSLo "$redoc_tgz" \
	    "https://registry.npmjs.org/redoc/-/$redoc_tgz"; } &&
	    echo "$redoc_sha  $redoc_tgz" | sha256sum -c --quiet &&
	    tar xzf "$redoc_tgz" --strip-components=2 \
	    package/bundles/redoc.standalone.js \
	    package/bundles/redoc.standalone.js.LICENSE.txt &&
	    rm -f "$redoc_tgz")
fi

venv="$top/.venv"
stamp="$venv/.requirements.sha"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	echo "deps: installing Python packages into .venv" >&2
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check \
	    -r requirements.txt
	echo "$want" >"$stamp"
fi
