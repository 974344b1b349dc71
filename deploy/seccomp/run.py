#!/usr/bin/env python3
"""Runs a command under a Docker-format seccomp profile, without Docker: loads the profile
with libseccomp (as runc does: the default action, then each rule for the syscalls this
architecture has), sets no_new_privs, then execs the command, which keeps this process's pid.

    deploy/seccomp/run.py deploy/seccomp-io_uring.json -- ringgate serve
    deploy/seccomp/run.py deploy/seccomp-io_uring.json --without io_uring_setup \\
        --without io_uring_enter --without io_uring_register -- ringgate serve   # as Docker's default

A filter cannot be removed once loaded: it holds for the command and all its children."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import libseccomp  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description="run a command under a Docker-format seccomp profile")
    ap.add_argument("profile", type=Path)
    ap.add_argument("--without", action="append", default=[], metavar="SYSCALL",
                    help="leave this syscall out of the profile's rules (repeatable)")
    ap.add_argument("--quiet", action="store_true")
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        ap.error("no command (put it after --)")
    cut = argv.index("--")
    args, command = ap.parse_args(argv[:cut]), argv[cut + 1:]
    counts = libseccomp.load_profile(json.loads(args.profile.read_text()), set(args.without))
    if not args.quiet:
        print(f"seccomp: {args.profile.name} loaded ({counts['rules']} rules; without: "
              f"{' '.join(args.without) or 'nothing'}); exec {command[0]}", file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
