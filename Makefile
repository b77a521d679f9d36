# Makefile -- build, run and test the checkout backend.
#
#   make            build the API module, the worker, the notifier and
#                   shopctl (build/)
#   make run        install what is missing, start everything, foreground
#   make test       sanitizer build (build/asan/), unit + black-box tests
#   make bench      benchmarks, results in bench/results.json and REPORT.md
#   make lint       clang-format check and cppcheck, where installed
#   make fmt        clang-format in place
#
# SAN=1 builds with ASan and UBSan into build/asan/.

CC	?= cc
PKGS	:= libmongoc-1.0 hiredis jansson libjwt libsodium libcurl
DEPS_OK	:= $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)

ifeq ($(SAN),1)
B	:= build/asan
OPT	:= -O1 -g -fno-omit-frame-pointer \
	   -fsanitize=address,undefined -fno-sanitize-recover=all
else
B	:= build
OPT	:= -O2 -g
endif

WARN	:= -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	   -Wshadow -Wpointer-arith -Wcast-qual
GEN	:= $(B)/gen
CFLAGS	+= -std=gnu11 -fPIC $(OPT) $(WARN) -D_GNU_SOURCE -I$(GEN) \
	   $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
LDLIBS	+= $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
KORE_CFLAGS := $(shell cat /usr/share/kore/features 2>/dev/null)

SHARED_SRC	:= $(filter-out %_test.c,$(wildcard shared/*.c))
TEST_SRC	:= $(wildcard shared/*_test.c worker/*_test.c) tests/unit.c
API_SRC		:= $(wildcard api/*.c api/runtime/*.c)
WORKER_SRC	:= $(filter-out %_test.c,$(wildcard worker/*.c))
NOTIFIER_SRC	:= $(wildcard notifier/*.c)
CTL_SRC		:= $(wildcard shopctl/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
SHARED_OBJ	:= $(call obj,$(SHARED_SRC))
HEADERS		:= $(wildcard */*.h */*/*.h)

# What runs the system; the rest is for tests and benchmarks.
RUN_BINS := $(B)/api.so $(B)/worker $(B)/notifier $(B)/shopctl
BINS	:= $(RUN_BINS) $(B)/unit $(B)/dbcheck $(B)/ceiling

.PHONY: all programs deps run test unit bench lint fmt clean run-ha
ifeq ($(DEPS_OK),yes)
all: $(BINS)
programs: $(RUN_BINS)
else
# A fresh machine: install the libraries, then build with their flags.
all programs:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory $@
endif

deps:
	@scripts/deps.sh

# The Redis library (shared/lua/, in this order) compiled in as a C
# string, with the key names of shared/redis.h; the script also checks
# the Lua against redis.h and protocol.h.
LUA	:= $(addprefix shared/lua/,common.lua auth.lua protocol.lua catalog.lua)
$(GEN)/checkout_lua.h: $(LUA) shared/redis.h shared/protocol.h scripts/lua_library.py
	@mkdir -p $(@D)
	@python3 scripts/lua_library.py shared/redis.h shared/protocol.h \
	    $(LUA) >$@.tmp && mv $@.tmp $@

$(B)/obj/shared/protocol.o: $(GEN)/checkout_lua.h

# The OpenAPI document (docs/openapi.yaml) as compact JSON, and the
# documentation page's script (redoc, fetched by scripts/deps.sh), both
# compiled into the API module: /openapi.json and /docs need no files.
$(GEN)/openapi_json.h: docs/openapi.yaml scripts/openapi_json.py | .venv/bin/python
	@mkdir -p $(@D)
	@.venv/bin/python scripts/openapi_json.py $< >$@.tmp && mv $@.tmp $@

$(B)/obj/api/docs.o: $(GEN)/openapi_json.h

# The consoles' pages, scripts and styles (web/), compiled in the same way.
WEB	:= $(wildcard web/*.html web/*.js web/*.css)
$(GEN)/web_assets.h: $(WEB) scripts/web_assets.py
	@mkdir -p $(@D)
	@python3 scripts/web_assets.py $(WEB) >$@.tmp && mv $@.tmp $@

$(B)/obj/api/web.o: $(GEN)/web_assets.h

REDOC	:= .tools/redoc/redoc.standalone.js

# What scripts/deps.sh installs beside the libraries: a machine that has
# the libraries but not these (a fresh clone there) gets them here.
.venv/bin/python $(REDOC):
	@scripts/deps.sh
$(B)/obj/redoc.o: $(REDOC)
	@mkdir -p $(@D)
	@echo "LD $@"
	@cd $(dir $(REDOC)) && ld -r -b binary -z noexecstack \
	    -o $(abspath $@) $(notdir $(REDOC))

$(B)/obj/api/%.o: api/%.c $(HEADERS)
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(CFLAGS) $(KORE_CFLAGS) -c $< -o $@

$(B)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(B)/api.so: $(call obj,$(API_SRC)) $(SHARED_OBJ) $(B)/obj/redoc.o
	@echo "LD $@"
	@$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS)

$(B)/worker: $(call obj,$(WORKER_SRC)) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/notifier: $(call obj,$(NOTIFIER_SRC)) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/shopctl: $(call obj,$(CTL_SRC)) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit: $(call obj,$(TEST_SRC) worker/handoff.c) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/dbcheck: $(call obj,tests/dbcheck.c) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The worker's batch transaction alone: the database's ceiling (bench).
$(B)/ceiling: $(call obj,bench/ceiling.c worker/batch_txn.c) $(SHARED_OBJ)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory programs
	@scripts/run.sh

# make run with Redis replicated: a primary, a replica, three Sentinels.
run-ha: deps
	@$(MAKE) --no-print-directory programs
	@REDIS_HA=1 scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@scripts/test.sh build/asan

unit: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@build/asan/unit

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

lint:
	@scripts/lint.sh check

fmt:
	@scripts/lint.sh fix

clean:
	rm -rf build
