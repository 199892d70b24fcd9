# ktrace_cli: pyktrace (FreeBSD ktrace(1) for Linux) and pykdump (kdump(1)).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TRACE  ?= ktrace.out
ARGS   ?= ls -l /
PREFIX ?= /usr/local
SHARE  := $(DESTDIR)$(PREFIX)/share
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit bench soak install completions lint-man clean bpf

# The editable install adds the source directory to sys.path through a
# plain .pth line (editable_mode=compat). setuptools' default editable
# finder is imported by every interpreter start in the venv and pulls in
# pathlib and importlib.util: it doubled the bare start-up of both commands.
EDITABLE := --config-settings editable_mode=compat
# The engine's C loop (setup.py): the editable install builds it in place,
# beside fastloop.py, so a change to its source reinstalls.
BUILT := pyproject.toml setup.py ktrace_cli/trace/fastloop.c

$(STAMP): $(BUILT)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(EDITABLE) -e .
	touch $@

$(DEVSTAMP): $(BUILT)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(EDITABLE) -e '.[dev]'
	touch $(STAMP) $@

# Trace a command (ARGS="...") into $(TRACE) and print it as kdump does.
# A command that fails still has its trace printed; make then exits with
# the command's status. When pyktrace itself refused (the file was not
# replaced), an older trace is not printed as if it were this one's.
run: $(STAMP)
	@before=$$(stat -c %d:%i $(TRACE) 2>/dev/null); \
	echo "$(BIN)/pyktrace -f $(TRACE) $(ARGS)"; \
	$(BIN)/pyktrace -f $(TRACE) $(ARGS); status=$$?; \
	after=$$(stat -c %d:%i $(TRACE) 2>/dev/null); \
	if [ -n "$$after" ] && [ "$$after" != "$$before" ]; then \
		echo "$(BIN)/pykdump -f $(TRACE)"; $(BIN)/pykdump -f $(TRACE) || exit $$?; \
	fi; \
	exit $$status

test: $(DEVSTAMP) lint typecheck lint-man
	$(BIN)/python -m pytest

lint: $(DEVSTAMP)
	$(BIN)/ruff check ktrace_cli tests bench tools

typecheck: $(DEVSTAMP)
	$(BIN)/mypy ktrace_cli

lint-man:
	@command -v mandoc >/dev/null || { echo "mandoc is needed: apt-get install mandoc"; exit 1; }
	mandoc -Tlint -W warning man/pyktrace.1 man/pykdump.1

# Every figure of the README's Performance section, then a markdown summary to paste there.
# BENCHFLAGS=--quick checks that everything runs (small sizes, one run).
bench: $(DEVSTAMP)
	@summary=$$(mktemp) && trap 'rm -f "$$summary"' EXIT && \
	$(BIN)/python bench/kdump_bench.py $(BENCHFLAGS) && \
	$(BIN)/python bench/trace_bench.py $(BENCHFLAGS) --summary "$$summary" && \
	$(BIN)/python bench/startup_bench.py $(BENCHFLAGS) --profile --summary "$$summary" && \
	$(BIN)/python bench/bpf_bench.py $(BENCHFLAGS) --summary "$$summary" && \
	$(BIN)/python bench/load_bench.py $(BENCHFLAGS) && \
	printf '\n# Summary (markdown, for the README)\n' && cat "$$summary"

# The reliability suite, larger loads and a 10-minute traced shell loop (MINUTES=...), then the figures table.
soak: $(DEVSTAMP)
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),10)

# The eBPF engine's object, committed as package data so installing needs no
# compiler (clang, bpftool and libbpf-dev only to rebuild it). vmlinux.h is
# generated from the running kernel's BTF and not kept: CO-RE relocates the
# object onto any BTF kernel at load time.
BPF_DIR := ktrace_cli/trace/bpf
BPF_BUILD := build/bpf
bpf:
	mkdir -p $(BPF_BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $(BPF_BUILD)/vmlinux.h
	clang -target bpf -O2 -g -mcpu=v3 -D__TARGET_ARCH_x86 -I$(BPF_BUILD) -fdebug-compilation-dir=. \
		-c $(BPF_DIR)/ktrace.bpf.c -o $(BPF_BUILD)/ktrace.bpf.o
	llvm-strip -g $(BPF_BUILD)/ktrace.bpf.o -o $(BPF_DIR)/ktrace.bpf.o

install:
	$(PYTHON) -m pip install .
	install -d $(SHARE)/man/man1
	install -m 644 man/pyktrace.1 man/pykdump.1 $(SHARE)/man/man1/
	$(MAKE) completions PYTHON=$(PYTHON)

# Shell completion scripts (click's) for bash, zsh and fish, written by the
# commands themselves into the usual directories under $(SHARE); needs
# ktrace_cli importable by $(PYTHON).
completions:
	@set -e; for prog in pyktrace pykdump; do \
		var=_$$(echo $$prog | tr a-z A-Z)_COMPLETE; \
		for shell in bash zsh fish; do \
			case $$shell in \
			bash) dir=$(SHARE)/bash-completion/completions; file=$$prog ;; \
			zsh) dir=$(SHARE)/zsh/site-functions; file=_$$prog ;; \
			fish) dir=$(SHARE)/fish/vendor_completions.d; file=$$prog.fish ;; \
			esac; \
			install -d $$dir; \
			env $$var=$${shell}_source $(PYTHON) -m ktrace_cli.cli.$$prog > $$dir/$$file.tmp; \
			test -s $$dir/$$file.tmp; \
			mv $$dir/$$file.tmp $$dir/$$file; \
			echo "$$dir/$$file"; \
		done; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
