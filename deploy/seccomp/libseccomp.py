"""The few libseccomp calls the profile generator and loader need, through ctypes on the
libseccomp.so.2 every Debian has (package libseccomp2)."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform

# Audit architecture tokens (linux/audit.h), which libseccomp uses as SCMP_ARCH_* values.
ARCH_TOKENS = {
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
}
NATIVE_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}

# seccomp.h
NR_SCMP_ERROR = -1
CMP_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
           "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ACT_ALLOW = 0x7FFF0000
ACT_KILL_PROCESS = 0x80000000
ACT_LOG = 0x7FFC0000
PR_SET_NO_NEW_PRIVS = 38


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p   # malloc'd, we free it
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_version.restype = ctypes.c_void_p
    return lib


LIB = _load()
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.free.argtypes = [ctypes.c_void_p]


def version() -> str:
    class V(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]
    v = V.from_address(LIB.seccomp_version())
    return f"{v.major}.{v.minor}.{v.micro}"


def syscall_names(arch: str, max_number: int = 1024) -> set[str]:
    """Every syscall name libseccomp knows for `arch` (numbers 0..max_number)."""
    token = ARCH_TOKENS[arch]
    names = set()
    for nr in range(max_number):
        p = LIB.seccomp_syscall_resolve_num_arch(token, nr)
        if p:
            names.add(ctypes.string_at(p).decode())
            _LIBC.free(p)
    return names


def native_arch() -> str:
    machine = platform.machine()
    if machine not in NATIVE_ARCH:
        raise SystemExit(f"seccomp: architecture {machine} is not one the profile covers ({', '.join(NATIVE_ARCH)})")
    return NATIVE_ARCH[machine]


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return act_errno(errno.EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_KILL_PROCESS":
        return ACT_KILL_PROCESS
    if name == "SCMP_ACT_LOG":
        return ACT_LOG
    raise SystemExit(f"seccomp: action {name} is not supported by this loader")


def load_profile(profile: dict, without: set[str] = frozenset()) -> dict[str, int]:
    """Loads a Docker-format profile into this process (and what it execs), like a container
    runtime does: the default action, then each rule for the syscalls this architecture has.
    `without` drops syscalls from every rule (they get the default action). Returns counts."""
    arch = native_arch()
    archs = [a["architecture"] for a in profile.get("archMap", [])] or profile.get("architectures", [])
    if arch not in archs:
        raise SystemExit(f"seccomp: the profile does not cover {arch}")
    ctx = LIB.seccomp_init(_action(profile["defaultAction"], profile.get("defaultErrnoRet")))
    if not ctx:
        raise SystemExit("seccomp: seccomp_init failed")
    counts = {"rules": 0, "unknown": 0, "other_arch": 0}
    try:
        for rule in profile["syscalls"]:
            action = _action(rule["action"], rule.get("errnoRet"))
            args = rule.get("args") or []
            cmps = (ArgCmp * max(1, len(args)))()
            for i, a in enumerate(args):
                cmps[i] = ArgCmp(a["index"], CMP_OPS[a["op"]], a["value"], a.get("valueTwo", 0))
            for name in rule["names"]:
                if name in without:
                    continue
                nr = LIB.seccomp_syscall_resolve_name(name.encode())
                if nr == NR_SCMP_ERROR:
                    counts["unknown"] += 1        # a runtime skips names its libseccomp lacks too
                    continue
                if nr < 0:
                    counts["other_arch"] += 1     # libseccomp's pseudo number: not on this arch
                    continue
                rc = LIB.seccomp_rule_add_array(ctx, action, nr, len(args), cmps)
                if rc < 0:
                    raise SystemExit(f"seccomp: rule for {name} refused: {os.strerror(-rc)}")
                counts["rules"] += 1
        if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SystemExit(f"seccomp: PR_SET_NO_NEW_PRIVS: {os.strerror(ctypes.get_errno())}")
        rc = LIB.seccomp_load(ctx)
        if rc < 0:
            raise SystemExit(f"seccomp: seccomp_load: {os.strerror(-rc)}")
    finally:
        LIB.seccomp_release(ctx)
    return counts
