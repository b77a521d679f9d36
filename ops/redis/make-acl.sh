#!/bin/sh
#
# make-acl.sh -- one Redis user per program of the checkout backend, each
# with a new password, as redis.conf `user` lines on stdout (append them
# to /etc/redis/checkout-secrets.conf on every data node), and, on
# stderr, the REDIS_URL user and password each program's environment
# file takes (ops/README.md, "Redis users").
#
# The API, the workers and the notifier may run the checkout library's
# functions and the commands its Redis calls need, and nothing that
# changes the server: no FUNCTION LOAD/FLUSH/DELETE (the library is
# shopctl's to load), no EVAL, no FLUSHALL, CONFIG, DEBUG, SHUTDOWN,
# REPLICAOF, KEYS or MONITOR (-@dangerous, -@admin; ROLE, which they
# ask on every connect, is given back).  shopctl (checkout-admin) also
# loads the library.  The default user stays for replication, Sentinel
# and the operator, with the password of requirepass.
set -eu

pw() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

app="~* &* +@all -@dangerous -@admin +role -eval -evalsha -eval_ro"
app="$app -evalsha_ro -script -function|load -function|flush"
app="$app -function|delete -function|restore -function|kill"
admin="~* &* +@all -@dangerous -@admin +role -function|flush"
admin="$admin -function|delete -function|restore -function|kill"

for u in checkout-api checkout-worker checkout-notifier checkout-admin; do
	p=$(pw)
	case $u in
	checkout-admin) rules=$admin ;;
	*) rules=$app ;;
	esac
	echo "user $u on >$p $rules"
	echo "$u: REDIS_URL=redis://$u:$p@HOST:6379/0" >&2
done
