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
	if [ "${REDIS_HA:-0}" = 1 ]; then
		start_redis_ha
		return
	fi
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

# REDIS_HA=1 (make run-ha): a primary on REDIS_PORT, replicas on
# REDIS_PORT+1 and +2 and three Sentinels on 26380-26382 (not 26379:
# Debian's own redis-sentinel may hold it), each with AOF, from config
# files
# written once into $DATA_DIR/ha: Sentinel rewrites them as roles
# change, so a restart keeps the topology a failover left (the node
# that was promoted stays the primary).
redis_ha_conf() { # port [primary-port]
	local f="$DATA_DIR/ha/redis-$1.conf"
	[ -f "$f" ] && return 0
	mkdir -p "$DATA_DIR/ha/redis-$1"
	cat >"$f" <<EOF
bind 127.0.0.1
port $1
dir $DATA_DIR/ha/redis-$1
appendonly yes
appendfsync always
save ""
repl-diskless-sync-delay 0
protected-mode yes
# Cut off from every replica for 10 s, a primary takes no writes: an old
# primary left behind by a partition acknowledges nothing (ops/README).
min-replicas-to-write 1
min-replicas-max-lag 10
EOF
	[ -n "${2:-}" ] && echo "replicaof 127.0.0.1 $2" >>"$f"
	return 0
}

sentinel_conf() { # port primary-port
	local f="$DATA_DIR/ha/sentinel-$1.conf"
	if [ -f "$f" ]; then	# from before the Sentinels had a password
		grep -q '^requirepass' "$f" || printf '%s\n' \
		    "requirepass $REDIS_SENTINEL_PASSWORD" \
		    "sentinel sentinel-pass $REDIS_SENTINEL_PASSWORD" >>"$f"
		return 0
	fi
	cat >"$f" <<EOF
bind 127.0.0.1
port $1
dir $DATA_DIR/ha
sentinel monitor $REDIS_MASTER_NAME 127.0.0.1 $2 2
sentinel down-after-milliseconds $REDIS_MASTER_NAME 2000
sentinel failover-timeout $REDIS_MASTER_NAME 10000
sentinel parallel-syncs $REDIS_MASTER_NAME 1
requirepass $REDIS_SENTINEL_PASSWORD
sentinel sentinel-pass $REDIS_SENTINEL_PASSWORD
EOF
}

# Two replicas: once one is promoted, the other is still there for the
# new primary's WAIT (with one, no checkout is accepted until the lost
# host returns and resyncs).
start_redis_ha() {
	local replica s
	mkdir -p "$DATA_DIR/ha"
	redis_ha_conf "$REDIS_PORT"
	start_proc redis "$DATA_DIR/log/redis.log" redis-server \
	    "$DATA_DIR/ha/redis-$REDIS_PORT.conf"
	for replica in $((REDIS_PORT + 1)) $((REDIS_PORT + 2)); do
		redis_ha_conf "$replica" "$REDIS_PORT"
		start_proc "redis-$replica" "$DATA_DIR/log/redis-$replica.log" \
		    redis-server "$DATA_DIR/ha/redis-$replica.conf"
	done
	for replica in "$REDIS_PORT" $((REDIS_PORT + 1)) $((REDIS_PORT + 2)); do
		wait_port 127.0.0.1 "$replica" 10 "Redis on $replica" || return 1
	done
	for s in 26380 26381 26382; do
		sentinel_conf "$s" "$REDIS_PORT"
		start_proc "sentinel$s" "$DATA_DIR/log/sentinel-$s.log" \
		    redis-server "$DATA_DIR/ha/sentinel-$s.conf" --sentinel
		wait_port 127.0.0.1 "$s" 10 "Sentinel $s" || return 1
	done
	echo "run: Redis primary, 2 replicas and 3 Sentinels (REDIS_SENTINELS=$REDIS_SENTINELS)"
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
