# SPDX-License-Identifier: GPL-2.0
#
# rust_loop: the project's front door. Kbuild reads ./Kbuild, not this file.
#
#   make                 build rust_loop.ko against the release kernel
#   make check           build what is missing, run the test suite in QEMU
#   make run [CMD='...'] boot the release kernel with rust_loop.ko loaded:
#                        a shell, or CMD's output and exit status
#   make check KERNEL=debian, make run KERNEL=debian
#                        the same on Debian's own packaged kernel
#   make bench           benchmark of rust_loop against loop.ko and null_blk
#   make KDIR=/path      build against another kernel build directory
#   make install         build rust_loop as loop.ko for the running kernel
#                        and install it in place of the kernel's loop.ko
#   make uninstall       take it out: the kernel's loop.ko is loop again
#   make dkms            the same through DKMS, rebuilt for every new kernel
#
# Everything the build needs (a trixie chroot with the pinned toolchain, the
# kernel source and the kernels) goes to ~/.cache/rust_loop
# ($RUST_LOOP_CACHE); only build/ is written inside the repository.

PROFILE ?= release
ifeq ($(origin KDIR), command line)
  MO ?= build/kdir
  MODULE_SRC := --kdir $(KDIR)
else
  MO ?= build/$(PROFILE)
  MODULE_SRC := $(PROFILE)
endif

KBUILD_ARGS := $(if $(CLIPPY),CLIPPY=1) $(if $(V),V=$(V))

# make install / make uninstall (Documentation/install.rst): the module
# built under the name loop, into build/<...>-loop/, for the kernel of KDIR
# (default: the running kernel's build directory), or of the project's
# kernel PROFILE when PROFILE is given on the command line. KO=PATH
# installs a loop.ko built before, without building. INSTALL_MOD_PATH,
# DESTDIR and DEPMOD are read by scripts/install.sh. make uninstall
# removes it for KRELEASE: KDIR's release, or the running kernel's.
ifeq ($(origin KDIR), command line)
  INSTALL_SRC := --kdir $(KDIR)
  INSTALL_MO := build/kdir-loop
  KRELEASE ?= $(shell cat $(KDIR)/include/config/kernel.release)
else ifeq ($(origin PROFILE), command line)
  INSTALL_SRC := $(PROFILE)
  INSTALL_MO := build/$(PROFILE)-loop
else
  INSTALL_SRC = --kdir /lib/modules/$(shell uname -r)/build
  INSTALL_MO := build/kdir-loop
endif
KRELEASE ?= $(shell uname -r)

# make run CMD='...': CMD reaches the guest's shell as it was typed. make
# would expand its $ (in the recipe, and when exporting it), so it is not
# exported and the recipe quotes its unexpanded value.
unexport CMD
shell_quote = '$(subst ','\'',$(1))'

.PHONY: all module kernel check run bench tests rustfmt rustfmtcheck clippy clean distclean \
	install uninstall dkms dkms-remove

all: module

module:
	scripts/build-module.sh $(MODULE_SRC) $(MO) $(KBUILD_ARGS)
	@echo "built $(MO)/rust_loop.ko"

kernel:
	$(if $(filter debian,$(PROFILE)),scripts/build-debian.sh,scripts/build-kernel.sh $(PROFILE))

tests:
	scripts/build-tests.sh build/tests

check:
	scripts/check.sh

# make run KERNEL=debian: on Debian's packaged kernel instead of the
# project's release kernel.
RUN_PROFILE := $(or $(KERNEL),release)

run:
	scripts/build-module.sh $(RUN_PROFILE) build/$(RUN_PROFILE) $(KBUILD_ARGS) >/dev/null
	scripts/qemu.sh --profile $(RUN_PROFILE) --insmod $(CURDIR)/build/$(RUN_PROFILE)/rust_loop.ko -- \
		$(call shell_quote,$(value CMD))

install:
ifeq ($(KO),)
	scripts/build-module.sh $(INSTALL_SRC) $(INSTALL_MO) RUST_LOOP_NAME=loop $(KBUILD_ARGS)
	scripts/install.sh install $(INSTALL_MO)/loop.ko
else
	scripts/install.sh install $(KO)
endif

uninstall:
	scripts/install.sh uninstall $(KRELEASE)

# make dkms: the module's sources to /usr/src/rust_loop-<version>, then
# dkms add, build and install for KRELEASE (with KDIR, against it).
DKMS_VERSION = $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' dkms.conf)
DKMS_SRC = $(DESTDIR)/usr/src/rust_loop-$(DKMS_VERSION)
DKMS_FILES := Kbuild dkms.conf $(wildcard *.rs sys/*.rs *.c include/*.h) scripts/debian-rust-headers.sh \
	scripts/check-helper-consts.sh
DKMS_ARGS = rust_loop/$(DKMS_VERSION) -k $(KRELEASE) $(if $(filter command line,$(origin KDIR)),--kernelsourcedir $(KDIR))

dkms:
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)
	cp --parents $(DKMS_FILES) $(DKMS_SRC)/
	dkms status rust_loop/$(DKMS_VERSION) | grep -q . || dkms add rust_loop/$(DKMS_VERSION)
	dkms build $(DKMS_ARGS)
	dkms install $(DKMS_ARGS)

# make dkms-remove: dkms remove for every kernel, and the sources.
dkms-remove:
	dkms remove rust_loop/$(DKMS_VERSION) --all
	rm -rf $(DKMS_SRC)

bench:
	scripts/bench.sh

rustfmt:
	scripts/rustfmt.sh

rustfmtcheck:
	scripts/rustfmt.sh --check

clippy:
	scripts/build-module.sh $(MODULE_SRC) $(MO) CLIPPY=1 W=1

clean:
	rm -rf build

# Also drops the cached chroot, kernel source and kernels.
distclean: clean
	rm -rf --one-file-system $${RUST_LOOP_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/rust_loop}
