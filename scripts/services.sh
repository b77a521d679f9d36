#!/usr/bin/env bash
#
# services.sh -- start Redis and SecantusDB for `make run`, unless the
# configured ones already answer.  Sourced by run.sh after `shopctl env`
# has set REDIS_*, MONGO_* and DATA_DIR; adds what it starts to the
# caller's process table through start_proc (run.sh).
#
# Redis runs with AOF and appendfsync always: a write is on disk before
# Redis answers it, so even a killed Redis keeps every accepted checkout,
# status and idempotency key (tests/test_invariants.py kills it).
# SecantusDB keeps its WiredTiger files in $DATA_DIR/mongo and runs with
# conf/secantusd.toml (every commit fsynced: a completed order survives
# a killed database).  Its Rust server is the default (built by
# scripts/deps.sh); SECANTUS_SERVER=py runs the Python one.

is_loopback() {
	case "$1" in
	127.*|localhost|::1) return 0 ;;
	*) return 1 ;;
	esac
}

port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_port() { # host port seconds name
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		port_open "$1" "$2" && return 0
		sleep 0.1
	done
	echo "run: $4 did not start listening on $1:$2 (see $DATA_DIR/log)" >&2
	return 1
}

redis_answers() {
	redis-cli -u "$REDIS_URL" --no-auth-warning ping 2>/dev/null | grep -q PONG
}

start_redis() {
	if redis_answers; then
		echo "run: using the Redis already at $REDIS_HOST:$REDIS_PORT"
		return 0
	fi
	if ! is_loopback "$REDIS_HOST"; then
		echo "run: REDIS_URL: nothing answers at $REDIS_HOST:$REDIS_PORT" >&2
		return 1
	fi
	mkdir -p "$DATA_DIR/redis"
	start_proc redis "$DATA_DIR/log/redis.log" redis-server \
	    --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA_DIR/redis" \
	    --appendonly yes --appendfsync always --save "" \
	    --daemonize no --protected-mode yes
	wait_port 127.0.0.1 "$REDIS_PORT" 10 Redis
}

# The Rust server when it is built (scripts/deps.sh), unless
# SECANTUS_SERVER=py; the Python server otherwise.
secantus_cmd() {
	if [ "${SECANTUS_SERVER:-rs}" != py ] &&
	    [ -x "$TOP/.tools/bin/secantusd-rs" ]; then
		echo "$TOP/.tools/bin/secantusd-rs"
	else
		echo "$TOP/.venv/bin/secantusd-py"
	fi
}

start_mongo() {
	if port_open "$MONGO_HOST" "$MONGO_PORT"; then
		echo "run: using the MongoDB already at $MONGO_HOST:$MONGO_PORT"
		return 0
	fi
	if ! is_loopback "$MONGO_HOST"; then
		echo "run: MONGO_URI: nothing answers at $MONGO_HOST:$MONGO_PORT" >&2
		return 1
	fi
	mkdir -p "$DATA_DIR/mongo"
	start_proc secantus "$DATA_DIR/log/secantus.log" "$(secantus_cmd)" \
	    --config "$TOP/conf/secantusd.toml" \
	    --host 127.0.0.1 --port "$MONGO_PORT" \
	    --storage-path "$DATA_DIR/mongo"
	wait_port 127.0.0.1 "$MONGO_PORT" 30 SecantusDB
}
