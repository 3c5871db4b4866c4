# veil: a userspace WireGuard tunnel. See README.md.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
# systemd's unit directory; Debian's package sets it to /lib/systemd/system.
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
RUNSTATEDIR ?= /var/run
LOCALSTATEDIR ?= /var

PKG_CONFIG ?= pkg-config
CC ?= cc
CFLAGS ?= -O2 -g
WERROR ?= 1
V ?= 0

VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo 0.0.0)

# Build variants live in their own directories so a sanitizer build never
# mixes objects with the release build, nor ThreadSanitizer's (which cannot
# share a process with AddressSanitizer) with the other sanitizers'.
ifeq ($(SANITIZE),)
BUILD ?= build
SAN_FLAGS :=
else
ifeq ($(SANITIZE),thread)
BUILD ?= build/tsan
else
BUILD ?= build/san
endif
ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
endif

WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual -Wsign-compare \
	-Wmissing-prototypes -Wstrict-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

# Recursive (=) so pkg-config runs only when a recipe needs the flags, which
# is after the deps stamp has installed whatever was missing.
DEP_CFLAGS = $(shell $(PKG_CONFIG) --cflags libsodium libcrypto libuv libmnl libmicrohttpd libcurl jansson)
# Each program links what it calls, and no more (gcc's --as-needed hides
# extra ones in readelf -d, but not under the sanitizers, which turn it off).
# The core: libsodium, and libcrypto (OpenSSL) for the transport AEAD only
# (src/core/aead.h says why). The test tools and benchmarks link the core alone.
CORE_LIBS = $(shell $(PKG_CONFIG) --libs libsodium libcrypto)
# veild: the core, the libuv loop, rtnetlink, the metrics listener, the crypto workers' threads.
VEILD_LIBS = $(shell $(PKG_CONFIG) --libs libsodium libcrypto libuv libmnl libmicrohttpd) -pthread
# veilctl: keys, rtnetlink, and the mesh commands' registry calls and local copies.
VEILCTL_LIBS = $(shell $(PKG_CONFIG) --libs libsodium libmnl libcurl jansson)
# The mesh agent: its loop, rtnetlink, libcurl for the registry's HTTPS, jansson for its JSON.
MESHD_LIBS = $(shell $(PKG_CONFIG) --libs libsodium libuv libmnl libcurl jansson)
# The unit tests: cmocka, the core, and jansson for the mesh modules' tests.
UNIT_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka)
UNIT_LIBS = $(shell $(PKG_CONFIG) --libs cmocka) $(CORE_LIBS) $(shell $(PKG_CONFIG) --libs jansson)

# Where things are at run time (include/veil.h), as wireguard-tools passes RUNSTATEDIR.
PATH_FLAGS := -DSYSCONFDIR='"$(SYSCONFDIR)"' -DRUNSTATEDIR='"$(RUNSTATEDIR)"' -DLOCALSTATEDIR='"$(LOCALSTATEDIR)"'

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(SAN_FLAGS) -MMD -MP \
	-Iinclude -Isrc -DVEIL_VERSION='"$(VERSION)"' $(PATH_FLAGS) $(DEP_CFLAGS) $(CFLAGS) $(CPPFLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)

# $(call quiet,WHAT,FILE) prints "  WHAT  FILE" unless V=1 shows whole commands.
ifeq ($(V),1)
Q :=
quiet =
else
Q := @
quiet = @printf '  %-7s %s\n' '$(1)' '$(2)'
endif

CORE_SRC := $(wildcard src/core/*.c)
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/%.o)
CORE_LIB := $(BUILD)/libveilcore.a

DAEMON_SRC := $(filter-out src/veild.c,$(wildcard src/*.c))
DAEMON_OBJ := $(DAEMON_SRC:src/%.c=$(BUILD)/%.o)
VEILD := $(BUILD)/veild

# veilctl, the control tool: its own modules, the core archive for nothing
# but shared helpers, libsodium for keys and libmnl for rtnetlink.
VEILCTL_SRC := $(wildcard tools/veilctl/*.c)
VEILCTL_OBJ := $(VEILCTL_SRC:tools/veilctl/%.c=$(BUILD)/ctl/%.o)
VEILCTL := $(BUILD)/veilctl

# veil-meshd, the mesh agent: its own modules, and what it shares with
# veilctl (the configuration, key sources, the control socket's client,
# rtnetlink) and veild (the log).
MESH_SRC := $(wildcard tools/mesh/*.c)
MESH_OBJ := $(MESH_SRC:tools/mesh/%.c=$(BUILD)/mesh/%.o)
MESH_SHARED_OBJ := $(addprefix $(BUILD)/ctl/,conf.o keys.o ctl.o nl.o) $(BUILD)/log.o
MESHD := $(BUILD)/veil-meshd

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

DEPS_STAMP := build/.deps-ok
# cmocka is for the unit tests alone: plain make never installs it.
UNIT_DEPS_STAMP := build/.deps-unit-ok

# libFuzzer targets, built with clang from the sources themselves (never
# from the gcc-built archive), always in build/fuzz whatever BUILD says.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 10
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(FUZZ_SAN) -g -O1 -Iinclude -Isrc -Itools/veilctl \
	$(shell $(PKG_CONFIG) --cflags libsodium libcrypto)
FUZZ_BIN := build/fuzz/fuzz_packet build/fuzz/fuzz_uapi build/fuzz/fuzz_conf build/fuzz/fuzz_mesh \
	build/fuzz/fuzz_offload
FUZZ_DEPS_STAMP := build/.deps-fuzz-ok

.PHONY: FORCE all deps bench-mesh demo-mesh check check-unit check-paths check-valgrind check-netns check-san check-tsan check-fuzz fuzz lint demo bench install deb clean
.DEFAULT_GOAL := all

all: $(CORE_LIB) $(VEILD) $(VEILCTL) $(MESHD)

# The entry points a fresh machine runs first install the Debian packages
# they miss (tools/install-deps.sh says which, and does nothing when none
# is missing, as in a package build); a single file never does. Each stamp
# is read as a makefile, so make brings it up to date and starts over before
# it builds anything, whatever -j says, and before pkg-config is asked for
# flags. Re-checked when the script changes.
GOALS := $(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))
DEPS_GOALS := all install demo demo-mesh bench bench-mesh check check-netns check-unit check-san check-tsan check-valgrind
UNIT_DEPS_GOALS := check check-unit check-san check-tsan check-valgrind
FUZZ_DEPS_GOALS := check check-fuzz fuzz
GOAL_STAMPS := $(if $(filter $(DEPS_GOALS),$(GOALS)),$(DEPS_STAMP)) \
	$(if $(filter $(UNIT_DEPS_GOALS),$(GOALS)),$(UNIT_DEPS_STAMP)) \
	$(if $(filter $(FUZZ_DEPS_GOALS),$(GOALS)),$(FUZZ_DEPS_STAMP))
ifeq ($(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS))),)
include $(GOAL_STAMPS)
else
# make -n would run a makefile's rule for real: under -n and -q the stamps
# are plain prerequisites of the goals instead, shown and not run.
$(GOALS): $(GOAL_STAMPS)
endif

$(DEPS_STAMP): tools/install-deps.sh
	$(Q)tools/install-deps.sh build
	$(Q)mkdir -p $(@D) && touch $@

deps: $(DEPS_STAMP)

$(UNIT_DEPS_STAMP): tools/install-deps.sh
	$(Q)tools/install-deps.sh build unit
	$(Q)mkdir -p $(@D) && touch $@

$(FUZZ_DEPS_STAMP): tools/install-deps.sh
	$(Q)tools/install-deps.sh fuzz
	$(Q)mkdir -p $(@D) && touch $@

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	$(call quiet,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(VEILD): $(BUILD)/veild.o $(DAEMON_OBJ) $(CORE_LIB)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(VEILD_LIBS)

$(BUILD)/ctl/%.o: tools/veilctl/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/veilctl -Itools/mesh -c -o $@ $<

$(BUILD)/mesh/%.o: tools/mesh/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/veilctl -Itools/mesh -c -o $@ $<

$(MESHD): $(MESH_OBJ) $(MESH_SHARED_OBJ) $(CORE_LIB)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(MESHD_LIBS)

# A file that changes only when VERSION does: the two objects that print it
# are rebuilt then, so veild and veilctl never report different versions.
VERSION_STAMP := $(BUILD)/version
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@
$(BUILD)/veild.o $(BUILD)/ctl/main.o $(BUILD)/mesh/main.o $(BUILD)/mesh/agent.o: $(VERSION_STAMP)
FORCE:

# veilctl shares the systemd notification client with veild.
# veilctl shares the mesh's records, messages and local copies with the agent.
VEILCTL_MESH_OBJ := $(addprefix $(BUILD)/mesh/,view.o record.o etcd.o)
$(VEILCTL): $(VEILCTL_OBJ) $(VEILCTL_MESH_OBJ) $(BUILD)/notify.o $(CORE_LIB)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(VEILCTL_LIBS)

# Each unit test includes the .c it tests (to reach static functions) and
# takes everything else from the core archive.
$(BUILD)/tests/%: tests/unit/%.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -Itools/veilctl -Itools/mesh $(UNIT_CFLAGS) -o $@ $< $(CORE_LIB) \
		$(ALL_LDFLAGS) $(UNIT_LIBS)
# The crypto workers' test runs their threads.
$(BUILD)/tests/test_workers: UNIT_LIBS += -pthread

# Test tools may use the protocol core (to craft real handshake messages).
$(BUILD)/tools/%: tests/tools/%.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CORE_LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CORE_LIBS)

# The workers' benchmark drives veild's own pool (src/workers.c) over the core.
$(BUILD)/bench/bench_workers: tests/bench/bench_workers.c $(BUILD)/workers.o $(CORE_LIB)
	@mkdir -p $(@D)
	$(call quiet,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/workers.o $(CORE_LIB) $(ALL_LDFLAGS) $(CORE_LIBS) -pthread

# The packet target drives the whole core; the UAPI target only the parser.
build/fuzz/fuzz_packet: tests/fuzz/fuzz_packet.c $(CORE_SRC) $(wildcard src/core/*.h)
build/fuzz/fuzz_uapi: tests/fuzz/fuzz_uapi.c src/uapi.c src/uapi.h src/core/compiler.h include/veil.h
build/fuzz/fuzz_conf: tests/fuzz/fuzz_conf.c tools/veilctl/conf.c tools/veilctl/conf.h include/veil.h
# The mesh target: the agent's pure modules (records, etcd's messages, the view), with jansson.
build/fuzz/fuzz_mesh: tests/fuzz/fuzz_mesh.c tools/mesh/record.c tools/mesh/etcd.c tools/mesh/view.c \
	tools/veilctl/conf.c tools/mesh/record.h tools/mesh/etcd.h tools/mesh/view.h tools/veilctl/conf.h \
	include/veil.h
build/fuzz/fuzz_mesh: FUZZ_EXTRA_CFLAGS = -Itools/mesh $(shell $(PKG_CONFIG) --cflags jansson)
build/fuzz/fuzz_mesh: FUZZ_EXTRA_LIBS = $(shell $(PKG_CONFIG) --libs jansson)
# The TUN offloads (GRO and the TSO cutter), which fuzz_packet never reaches.
build/fuzz/fuzz_offload: tests/fuzz/fuzz_offload.c src/offload.c src/offload.h

$(FUZZ_BIN):
	@mkdir -p $(@D)
	$(call quiet,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_EXTRA_CFLAGS) -o $@ $(filter %.c,$^) \
		$(shell $(PKG_CONFIG) --libs libsodium libcrypto) $(FUZZ_EXTRA_LIBS)

check-unit: $(UNIT_BIN)
	$(Q)tools/run-unit-tests.sh $(UNIT_BIN)

# The whole suite: unit tests in the release build and again under
# AddressSanitizer + UndefinedBehaviorSanitizer, the crypto workers under
# ThreadSanitizer, a bounded fuzz run, then the namespace tests.
# The namespace tests run against the release build (seccomp on) and again
# against the sanitizer build; the 150 s rekey test, the registry faults
# (a 60 s outage) and the mesh's key rotation only once (the agent runs
# under the sanitizers in mesh.sh and mesh-records.sh; the rotation's time
# pays for check-tsan).
check: check-unit check-paths
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 check-unit
	$(Q)$(MAKE) --no-print-directory check-tsan
	$(Q)$(MAKE) --no-print-directory check-valgrind
	$(Q)$(MAKE) --no-print-directory check-fuzz
	$(Q)$(MAKE) --no-print-directory check-netns
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 NETNS_SKIP="rekey mesh-faults mesh-rotate" check-netns

# The release unit tests again under valgrind: no leak, no invalid access.
check-valgrind: $(UNIT_BIN)
	$(Q)tools/install-deps.sh valgrind
	$(Q)VALGRIND="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
		tools/run-unit-tests.sh $(UNIT_BIN)

# Every committed seed once, then CHECK_FUZZ_SECONDS of fuzzing per target.
check-fuzz: $(FUZZ_BIN)
	$(Q)tools/run-fuzz.sh check $(CHECK_FUZZ_SECONDS) $(FUZZ_BIN)

# FUZZ_SECONDS per target on a growing copy of the corpus in build/fuzz/corpus.
fuzz: $(FUZZ_BIN)
	$(Q)tools/run-fuzz.sh fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)

# cppcheck and clang-tidy (.clang-tidy) over src/, the test tools and the
# fuzz targets; any finding fails.
lint:
	$(Q)PKG_CONFIG=$(PKG_CONFIG) tools/lint.sh

# RUNSTATEDIR, SYSCONFDIR and LOCALSTATEDIR reach every compiled-in path: a
# build with paths of its own, whose binaries tests/paths.sh reads.
PATHS_TEST := RUNSTATEDIR=/nonexistent/veil-run SYSCONFDIR=/nonexistent/veil-etc \
	LOCALSTATEDIR=/nonexistent/veil-var
# Unoptimised: only the strings matter, and it costs a third of the time.
check-paths:
	$(Q)$(MAKE) --no-print-directory -s BUILD=build/paths CFLAGS=-O0 $(PATHS_TEST) \
		build/paths/veild build/paths/veilctl build/paths/veil-meshd >/dev/null
	$(Q)$(PATHS_TEST) tests/paths.sh build/paths

check-san:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 check-unit

# ThreadSanitizer (SANITIZE=thread, in build/tsan) over what runs threads:
# the crypto workers' and the engine's unit tests, then tests/netns/workers.sh
# against a TSan veild, seccomp on (its filter lets the runtime report:
# src/sandbox.c). Without ASLR: on kernels with more mmap randomness than
# gcc 12's runtime expects it stops with "unexpected memory mapping".
TSAN_UNIT := build/tsan/tests/test_workers build/tsan/tests/test_device
TSAN_RUN = setarch $$(uname -m) -R
check-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread build/tsan/veild build/tsan/veilctl \
		$(addprefix build/tsan/tools/,sequdp xfer udpsend) $(TSAN_UNIT)
	$(Q)$(TSAN_RUN) tools/run-unit-tests.sh $(TSAN_UNIT)
	$(Q)BUILD=build/tsan NETNS_ONLY=workers $(TSAN_RUN) tools/run-netns-tests.sh

check-netns: all $(TOOL_BIN)
	$(Q)BUILD=$(BUILD) NETNS_SKIP="$(NETNS_SKIP)" NETNS_ONLY="$(NETNS_ONLY)" tools/run-netns-tests.sh

demo: all $(TOOL_BIN)
	$(Q)BUILD=$(BUILD) tools/demo.sh

# Three etcd members and five veil nodes that find one another through them.
demo-mesh: all $(TOOL_BIN)
	$(Q)BUILD=$(BUILD) tools/demo-mesh.sh

bench: all $(BENCH_BIN) $(TOOL_BIN)
	$(Q)BUILD=$(BUILD) tools/bench.sh
	$(Q)BUILD=$(BUILD) tools/bench-mesh.sh

# The mesh line alone: change-to-applied latency over 20 agents, agents at rest.
bench-mesh: all $(TOOL_BIN)
	$(Q)BUILD=$(BUILD) tools/bench-mesh.sh

# veilctl up runs veild as DAEMON_USER (tools/veilctl/up.h): a real install
# (no DESTDIR, as root) creates that account when it is missing, as the
# Debian package's postinst does; a staged install leaves accounts alone.
DAEMON_USER := _veil

# The unit names veilctl and the configuration directory where this install puts them.
install: all
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! getent passwd $(DAEMON_USER) >/dev/null; then \
		echo "useradd --system $(DAEMON_USER) (veilctl up runs veild as it)"; \
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "veil tunnel daemon" $(DAEMON_USER); \
	fi
	install -d $(DESTDIR)$(SBINDIR)
	install -m 0755 $(VEILD) $(DESTDIR)$(SBINDIR)/veild
	install -m 0755 $(MESHD) $(DESTDIR)$(SBINDIR)/veil-meshd
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(VEILCTL) $(DESTDIR)$(BINDIR)/veilctl
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 man/veild.8 man/veilctl.8 man/veil-meshd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/veil.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions
	install -m 0644 packaging/bash-completion/veilctl $(DESTDIR)$(DATADIR)/bash-completion/completions/veilctl
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/bin/veilctl|$(BINDIR)/veilctl|g' -e 's|/etc/veil|$(SYSCONFDIR)/veil|g' \
		packaging/systemd/veil@.service >$(BUILD)/veil@.service
	install -m 0644 $(BUILD)/veil@.service $(DESTDIR)$(UNITDIR)/
	install -d $(DESTDIR)$(DATADIR)/doc/veil/examples
	install -m 0644 conf/*.conf $(DESTDIR)$(DATADIR)/doc/veil/examples/

# A Debian package from packaging/debian with Debian's own tools (build/deb/*.deb).
deb:
	$(Q)tools/build-deb.sh

clean:
	rm -rf build

-include $(CORE_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(VEILCTL_OBJ:.o=.d) $(MESH_OBJ:.o=.d) $(BUILD)/veild.d \
	$(UNIT_BIN:=.d) $(TOOL_BIN:=.d) $(BENCH_BIN:=.d)
