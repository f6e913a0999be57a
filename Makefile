# SPDX-License-Identifier: GPL-2.0
#
# rust_loop: the project's front door. Kbuild reads ./Kbuild, not this file.
#
#   make                 build rust_loop.ko against the release kernel
#   make check           build what is missing, run the test suite in QEMU
#   make run [CMD='...'] boot the release kernel with rust_loop.ko loaded:
#                        a shell, or CMD's output and exit status
#   make bench           fio benchmark of rust_loop against loop.ko
#   make KDIR=/path      build against another kernel build directory
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

# make run CMD='...' reads CMD from the environment, unquoted by make.
export CMD

.PHONY: all module kernel check run bench tests rustfmt rustfmtcheck clippy clean distclean

all: module

module:
	scripts/build-module.sh $(MODULE_SRC) $(MO) $(KBUILD_ARGS)
	@echo "built $(MO)/rust_loop.ko"

kernel:
	scripts/build-kernel.sh $(PROFILE)

tests:
	scripts/build-tests.sh build/tests

check:
	scripts/check.sh

run:
	scripts/build-module.sh release build/release $(KBUILD_ARGS) >/dev/null
	scripts/qemu.sh --profile release --insmod $(CURDIR)/build/release/rust_loop.ko -- "$$CMD"

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
