#!/usr/bin/env bash
#
# run.sh -- `make run`: Redis (with REDIS_HA=1, `make run-ha`: a primary,
# a replica and three Sentinels), SecantusDB, migrations, the API,
# $WORKERS workers and $NOTIFIERS notifiers, in the foreground, all on
# loopback.  Without SMTP_URL, order emails go to a local SMTP sink
# (scripts/smtp_sink.py) that keeps them in $DATA_DIR/mail.
#
# Ctrl-C or SIGTERM stops every process this script started and waits
# for them.  A process that dies while running is started again after a
# second (what systemd's Restart=on-failure does in ops/).  Settings come
# from the environment and .env, read by `shopctl env`, so this script
# and the C code agree on every default.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=${BUILD_DIR:-build}
case $B in /*) ;; *) B="$TOP/$B" ;; esac

# make run-ha: the Sentinels that start_redis_ha (services.sh) starts.
# Their password is made once into $DATA_DIR/ha/sentinel.pass unless
# REDIS_SENTINEL_PASSWORD is set.
if [ "${REDIS_HA:-0}" = 1 ]; then
	export REDIS_SENTINELS=${REDIS_SENTINELS:-127.0.0.1:26380,127.0.0.1:26381,127.0.0.1:26382}
	export REDIS_MASTER_NAME=${REDIS_MASTER_NAME:-checkout}
	ha_dir=$("$B/shopctl" env | sed -n "s/^DATA_DIR='\(.*\)'$/\1/p")/ha
	mkdir -p "$ha_dir"
	[ -s "$ha_dir/sentinel.pass" ] ||
	    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' \
	    >"$ha_dir/sentinel.pass")
	export REDIS_SENTINEL_PASSWORD=${REDIS_SENTINEL_PASSWORD:-$(cat "$ha_dir/sentinel.pass")}
fi
env_lines=$("$B/shopctl" env --secrets) || exit 1
eval "$env_lines"
mkdir -p "$DATA_DIR/log" "$DATA_DIR/run"

declare -A PIDS CMDS LOGS
stopping=0

start_proc() { # name logfile command...
	local name=$1 log=$2
	shift 2
	if [ "$log" = - ]; then
		"$@" &
	else
		"$@" >>"$log" 2>&1 &
	fi
	PIDS[$name]=$!
	CMDS[$name]=$(printf '%q ' "$@")
	LOGS[$name]=$log
}

stop_all() {
	stopping=1
	local name pid i alive
	# The API and workers first, so they finish what they hold.
	for name in "${!PIDS[@]}"; do
		case $name in redis*|sentinel*|secantus) ;; *) kill -TERM "${PIDS[$name]}" 2>/dev/null ;; esac
	done
	for ((i = 0; i < 100; i++)); do
		alive=0
		for name in "${!PIDS[@]}"; do
			case $name in redis*|sentinel*|secantus) continue ;; esac
			kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for ((i = 0; i < 100; i++)); do
		alive=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	echo "run: stopped"
}
trap 'stop_all; exit 0' INT TERM
trap 'stopping=1' EXIT

# shellcheck source=scripts/services.sh
. "$TOP/scripts/services.sh"

start_redis || { stop_all; exit 1; }
start_mongo || { stop_all; exit 1; }
"$B/shopctl" migrate || { stop_all; exit 1; }

conf="$DATA_DIR/run/api.conf"
sed "s|^load .*|load $B/api.so|" conf/api.conf >"$conf"
# A sanitizer build of the module needs its runtime loaded into kore first.
# (ldd's output is read whole: `grep -q` in a pipe exits at the first
# match, and with pipefail ldd's SIGPIPE would make the test fail.)
kore_env=()
if [[ $(ldd "$B/api.so") == *libasan* ]]; then
	kore_env=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
	    "ASAN_OPTIONS=detect_leaks=0")
fi
start_proc api - "${kore_env[@]}" kore -f -n -r -c "$conf"
for ((w = 1; w <= WORKERS; w++)); do
	start_proc "worker$w" - "$B/worker"
done

notify_env=()
mail_note=""
if [ -z "$SMTP_URL" ] && [ "$NOTIFIERS" -gt 0 ]; then
	sink_port=${SMTP_SINK_PORT:-2525}
	start_proc smtp "$DATA_DIR/log/smtp.log" .venv/bin/python \
	    scripts/smtp_sink.py --port "$sink_port" --dir "$DATA_DIR/mail"
	wait_port 127.0.0.1 "$sink_port" 10 "the SMTP sink" || {
		stop_all
		exit 1
	}
	notify_env=(env "SMTP_URL=smtp://127.0.0.1:$sink_port" SMTP_TLS=none)
	mail_note="; order emails land in $DATA_DIR/mail"
fi
for ((n = 1; n <= NOTIFIERS; n++)); do
	start_proc "notifier$n" - "${notify_env[@]}" "$B/notifier"
done

for ((i = 0; i < 100; i++)); do
	curl -fs "http://$BIND_ADDRESS:$PORT/ready" >/dev/null && break
	sleep 0.2
done
echo "run: API at http://$BIND_ADDRESS:$PORT, docs at /docs ($WORKERS workers, $NOTIFIERS notifiers$mail_note; Ctrl-C stops everything)"

# Supervise: restart what dies until we are asked to stop.
while [ $stopping = 0 ]; do
	wait -n 2>/dev/null
	[ $stopping = 1 ] && break
	for name in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
			echo "run: $name exited; restarting it in 1 s" >&2
			sleep 1
			[ $stopping = 1 ] && break
			eval "start_proc $name ${LOGS[$name]} ${CMDS[$name]}"
		fi
	done
done
