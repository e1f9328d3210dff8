# nutcracker: plain Makefile, C11, only Debian packages as dependencies.
#
#   make              build ./nutcracker (optimised, with debug symbols)
#   make test         layer check + unit tests + end-to-end tests against real servers
#   make e2e-uring    the end-to-end tests with the proxy on the io_uring event backend
#   make layers       includes only go down the layers; invariants keep their owners
#   make asan-test    the same suite built with ASan + UBSan (clang)
#   make fuzz         build the libFuzzer targets and run each for FUZZ_SECONDS
#   make bench        side-by-side benchmark (see bench/README.md)
#   make malloc-count the allocation counter bench/ preloads, and a frame-pointer build to
#                     name the call sites (build/malloc_count.so, build/fp/nutcracker)
#   make install      PREFIX=/usr/local DESTDIR=: binary, manual pages, example
#                     configuration, systemd unit
#   make man          regenerate man/*.8 and man/*.5 from man/manual.txt (python3)
#   make deb          dpkg-buildpackage -us -uc -b (packaging build deps: debian/control)
#   make deb-test     build the .deb, install it over Debian's nutcracker in a fresh
#                     Debian 12 chroot (debootstrap) and run it there (slow; not in test)

SHELL   := /bin/bash
CC      ?= cc
BUILD   ?= build
SAN     ?=
PKGS    := yaml-0.1 libssl libcrypto liburing

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O2 -g
EXTRA   ?=
# CFLAGS, CPPFLAGS and LDFLAGS given by the environment or the command line
# (dpkg-buildflags' hardening in a package build) come after ours, not instead
override CFLAGS := $(OPT) -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(shell pkg-config --cflags $(PKGS)) \
                   $(EXTRA) $(CPPFLAGS) $(CFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm
# Bind every symbol at start and make the GOT read-only (Debian's hardening does the same in
# the package build): the master resolves them once before it forks, instead of each worker
# resolving the request path's functions on their first call.
LDBIND  := -Wl,-z,relro,-z,now

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/nutcracker
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install

ifeq ($(SAN),1)
CC      := clang
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(shell find src -name '*.c' ! -name main.c | sort)
# files embedded at build time (tools/embed.sh): the status page
GEN_OBJ   := $(BUILD)/gen/status_html.o
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(GEN_OBJ)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 20

.PHONY: all test unit e2e e2e-uring layers asan-test fuzz fuzz-build bench bench-tools malloc-count \
        clean format-check soak soak-sentinel soak-cluster install man deb deb-test

all: nutcracker

nutcracker: $(BUILD)/nutcracker
	@if [ "$(BUILD)" = build ]; then cp $(BUILD)/nutcracker nutcracker.tmp && mv -f nutcracker.tmp nutcracker; fi

$(BUILD)/nutcracker: $(BUILD)/src/main.o $(BUILD)/libnc.a
	$(CC) $(LDBIND) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libnc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/status_html.c: src/stats/status.html tools/embed.sh
	@mkdir -p $(dir $@)
	tools/embed.sh status_html $< > $@.tmp && mv -f $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libnc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libnc.a $(LDLIBS)

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do $$t || fail=1; done; exit $$fail

e2e: $(BUILD)/nutcracker
	NUTCRACKER_BIN=$(abspath $(BUILD)/nutcracker) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e

e2e-uring: $(BUILD)/nutcracker
	NUTCRACKER_EVENT_BACKEND=io_uring $(MAKE) e2e

layers:
	tools/check_layers.sh

test: layers unit e2e

# NC_SANITIZED tells tests that RSS figures include ASan's quarantine and redzones.
asan-test:
	NC_SANITIZED=1 $(MAKE) BUILD=build/asan SAN=1 test

# libFuzzer needs clang; the targets link the same library objects built with coverage.
fuzz-build:
	$(MAKE) BUILD=build/fuzzlib CC=clang SAN= \
	  OPT="-O1 -g" EXTRA="-fsanitize=fuzzer-no-link,address,undefined" build/fuzzlib/libnc.a
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g -Isrc -fsanitize=fuzzer,address,undefined \
	    -o build/fuzz/$$n $$f build/fuzzlib/libnc.a $(LDLIBS) || exit 1; \
	done

fuzz: fuzz-build
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); c=fuzz/corpus/$${n#fuzz_}; mkdir -p build/fuzz/work/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build/fuzz/work/$$n $$c 2>&1 | grep -E 'stat::number_of_executed_units|^==[0-9]+==|SUMMARY' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

bench: nutcracker bench-tools
	bench/run.sh

# The load generator and allocation counter bench/run.sh uses (tools, not part of the product).
bench-tools: build/loadgen malloc-count

build/loadgen: bench/loadgen.c
	@mkdir -p build
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) -o $@ $< -lm

malloc-count: build/malloc_count.so
	$(MAKE) BUILD=build/fp EXTRA=-fno-omit-frame-pointer build/fp/nutcracker

build/malloc_count.so: bench/malloc_count.c
	@mkdir -p build
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) -fno-omit-frame-pointer -fPIC -shared -o $@ $<

# Mixed load plus backend faults and reloads for SOAK_SECONDS (SOAK_WORKERS=N: worker mode);
# fails if RSS or descriptors grow.
SOAK_SECONDS ?= 60
SOAK_WORKERS ?= 0
soak: $(BUILD)/nutcracker
	NUTCRACKER_BIN=$(abspath $(BUILD)/nutcracker) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_WORKERS=$(SOAK_WORKERS) \
	  /usr/bin/python3 tests/soak/soak.py

# A sentinel pool through planned failovers with upgrades and reloads in their middle
# for SOAK_SECONDS (SOAK_SEED: the actions' order): it fails when an acknowledged SET is lost.
SOAK_SEED ?= 1
soak-sentinel: $(BUILD)/nutcracker
	NUTCRACKER_BIN=$(abspath $(BUILD)/nutcracker) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_WORKERS=$(SOAK_WORKERS) \
	  SOAK_SEED=$(SOAK_SEED) /usr/bin/python3 tests/soak/sentinel_soak.py

# The same for a Redis Cluster pool through slot moves and planned failovers.
soak-cluster: $(BUILD)/nutcracker
	NUTCRACKER_BIN=$(abspath $(BUILD)/nutcracker) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_WORKERS=$(SOAK_WORKERS) \
	  SOAK_SEED=$(SOAK_SEED) /usr/bin/python3 tests/soak/cluster_soak.py

# The manual pages are generated from man/manual.txt and checked in, so that
# building and installing need no python (tests/e2e/test_manual.py checks them).
man:
	/usr/bin/python3 tools/gen_man.py

install: $(BUILD)/nutcracker
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 0755 $(BUILD)/nutcracker $(DESTDIR)$(SBINDIR)/nutcracker
	$(INSTALL) -m 0644 man/nutcracker.8 $(DESTDIR)$(MANDIR)/man8/nutcracker.8
	$(INSTALL) -m 0644 man/nutcracker.yml.5 $(DESTDIR)$(MANDIR)/man5/nutcracker.yml.5
	$(INSTALL) -m 0644 conf/example.yml $(DESTDIR)$(DOCDIR)/examples/nutcracker.yml
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/nutcracker.service.in > $(BUILD)/nutcracker.service
	$(INSTALL) -m 0644 $(BUILD)/nutcracker.service $(DESTDIR)$(UNITDIR)/nutcracker.service

# dpkg-buildpackage leaves the .deb in the parent folder: it is moved to
# build/deb (after the build, whose clean step empties build/), then linted.
DEB_VERSION = $(shell dpkg-parsechangelog -S Version 2>/dev/null)
deb:
	dpkg-buildpackage -us -uc -b
	mkdir -p build/deb
	mv ../nutcracker_$(DEB_VERSION)_* ../nutcracker-dbgsym_$(DEB_VERSION)_* build/deb/
	if command -v lintian >/dev/null; then lintian --fail-on error build/deb/nutcracker_$(DEB_VERSION)_*.changes; fi

deb-test:
	scripts/install-deps.sh deb-test
	tools/deb_test.sh

format-check:
	clang-format --dry-run --Werror $$(find src tests/unit fuzz -name '*.[ch]')

clean:
	rm -rf build nutcracker

-include $(filter-out $(GEN_OBJ:.o=.d),$(LIB_OBJ:.o=.d)) $(BUILD)/src/main.d
