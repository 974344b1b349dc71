#!/usr/bin/env python3
"""Writes deploy/seccomp-io_uring.json: a Docker-format seccomp profile shaped like Docker's
default (an allowlist, defaultAction SCMP_ACT_ERRNO = EPERM) that also allows io_uring.

It is built from what Docker documents about its default profile, not from moby's file: every
syscall libseccomp knows for x86_64 and aarch64, minus the calls Docker's seccomp page lists as
blocked ("Significant syscalls blocked by the default profile"), minus a few more blocked for
the same reasons (below), with `clone` and `personality` allowed only for arguments that make
no namespace / no emulation, and `clone3` answered ENOSYS (its flags are behind a pointer a
filter cannot read; glibc then uses clone). io_uring_setup, io_uring_enter and
io_uring_register are allowed: Docker >= 25 leaves them out of its default, so Ringgate falls
back to epoll there.

    python3 deploy/seccomp/generate.py            # rewrite the JSON
    python3 deploy/seccomp/generate.py --check    # exit 1 if the committed JSON differs

The name list depends on the libseccomp version (Debian bookworm: 2.5.4); --check says which
version the file was made with when they differ."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import libseccomp  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seccomp-io_uring.json"
ARCHS = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
MADE_WITH_LIBSECCOMP = "2.5.4"

IO_URING = ["io_uring_setup", "io_uring_enter", "io_uring_register"]

# Docker's documented list of significant blocked syscalls (docs.docker.com/engine/security/
# seccomp/). `clone` and `personality` are listed there but allowed with argument checks below,
# as the page says the default profile does for "variants of those system calls".
DOCUMENTED_BLOCKED = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
    "mbind", "mount", "move_pages", "nfsservctl", "open_by_handle_at", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
    "quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime",
    "swapon", "swapoff", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib",
    "userfaultfd", "ustat", "vm86", "vm86old",
}

# Ours, for the reasons the documented table gives: Docker's page says its list is "significant
# (but not all)", so these are our judgement, not a copy of Docker's choices.
ALSO_BLOCKED = {
    # the mount API of Linux >= 5.2 ("deny mounting"), and quota on a file descriptor
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "quotactl_fd",
    # process inspection, as process_vm_readv: another process's descriptors
    "pidfd_getfd",
    # the kernel log and terminal hang-up: host-wide, capability-gated
    "syslog", "vhangup",
    # filesystem-wide event monitoring (CAP_SYS_ADMIN); x86 LDT changes (16-bit code only)
    "fanotify_init", "modify_ldt",
    # NUMA memory policy, as set_mempolicy
    "set_mempolicy_home_node", "migrate_pages",
    # never implemented by Linux: they return ENOSYS anyway
    "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver",
}

# Allowed only with these arguments.
CLONE_NEW_NAMESPACES = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                        | 0x20000000 | 0x40000000)  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
PERSONALITY_ALLOWED = [0x0, 0x20000, 0xFFFFFFFF]   # PER_LINUX, ADDR_NO_RANDOMIZE, query
SPECIAL = {"clone", "clone3", "personality"}
ENOSYS = 38


def profile(names_by_arch: dict[str, set[str]]) -> dict:
    known = set().union(*names_by_arch.values())
    missing = [n for n in IO_URING if n not in known]
    if missing:
        raise SystemExit(f"generate: this libseccomp does not know {missing}")
    allowed = sorted(known - DOCUMENTED_BLOCKED - ALSO_BLOCKED - SPECIAL)
    rules = [
        {"names": allowed, "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": CLONE_NEW_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    ]
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": v, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
              for v in PERSONALITY_ALLOWED]
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": a, "subArchitectures": []} for a in ARCHS],
        "syscalls": rules,
    }


def render() -> str:
    return json.dumps(profile({a: libseccomp.syscall_names(a) for a in ARCHS}), indent=2) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    text = render()
    if args.check:
        if OUT.read_text() == text:
            return 0
        print(f"generate: {OUT} differs from what libseccomp {libseccomp.version()} gives "
              f"(the file was made with {MADE_WITH_LIBSECCOMP}); rerun deploy/seccomp/generate.py", file=sys.stderr)
        return 1
    OUT.write_text(text)
    allowed = json.loads(text)["syscalls"][0]["names"]
    print(f"generate: wrote {OUT}: {len(allowed)} syscalls allowed outright (libseccomp {libseccomp.version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
