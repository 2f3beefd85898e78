"""The syscall table of the architecture and the category of every syscall in it.

Numbers come from bcc's table (``bcc.syscall``: x86_64 up to ``rseq``, or ``ausyscall --dump`` on
other architectures) completed with the syscalls added since (x86_64 335-336, and 424 onwards,
which have the same number on every architecture). Each name is assigned to exactly one
category below; a test checks that every name of the table, and every syscall the running kernel
has a tracepoint for, is listed (so ``other`` holds only the few that fit nowhere else).
"""

from __future__ import annotations

import os

__all__ = ["CATEGORIES", "category_of", "syscall_table", "uncategorised"]

# Syscalls added after bcc's table: x86_64 only (335, 336) and the numbers shared by every architecture.
X86_64_EXTRA = {335: "uretprobe", 336: "uprobe"}
GENERIC_NEW = {
    424: "pidfd_send_signal", 425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register",
    428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick",
    434: "pidfd_open", 435: "clone3", 436: "close_range", 437: "openat2", 438: "pidfd_getfd", 439: "faccessat2",
    440: "process_madvise", 441: "epoll_pwait2", 442: "mount_setattr", 443: "quotactl_fd",
    444: "landlock_create_ruleset", 445: "landlock_add_rule", 446: "landlock_restrict_self", 447: "memfd_secret",
    448: "process_mrelease", 449: "futex_waitv", 450: "set_mempolicy_home_node", 451: "cachestat",
    452: "fchmodat2", 453: "map_shadow_stack", 454: "futex_wake", 455: "futex_wait", 456: "futex_requeue",
    457: "statmount", 458: "listmount", 459: "lsm_get_self_attr", 460: "lsm_set_self_attr",
    461: "lsm_list_modules", 462: "mseal", 463: "setxattrat", 464: "getxattrat", 465: "listxattrat",
    466: "removexattrat", 467: "open_tree_attr", 468: "file_getattr", 469: "file_setattr",
}

_LISTS = {
    "file_io": """
        read write open close stat fstat lstat newstat newfstat newlstat poll lseek pread64 pwrite64 readv writev
        access select pselect6 ppoll dup dup2 dup3 sendfile sendfile64 fcntl flock fsync fdatasync truncate
        ftruncate getdents getdents64 getcwd chdir fchdir rename renameat renameat2 mkdir mkdirat rmdir creat link
        linkat unlink unlinkat symlink symlinkat readlink readlinkat chmod fchmod fchmodat fchmodat2 chown fchown
        lchown fchownat umask mknod mknodat statfs fstatfs ustat sync syncfs sync_file_range epoll_create
        epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 epoll_ctl_old epoll_wait_old openat openat2
        futimesat newfstatat fstatat faccessat faccessat2 utime utimes utimensat splice tee vmsplice fallocate
        preadv pwritev preadv2 pwritev2 copy_file_range name_to_handle_at open_by_handle_at statx inotify_init
        inotify_init1 inotify_add_watch inotify_rm_watch fanotify_init fanotify_mark setxattr lsetxattr fsetxattr
        getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
        setxattrat getxattrat listxattrat removexattrat readahead fadvise64 io_setup io_destroy io_getevents
        io_submit io_cancel io_pgetevents io_uring_setup io_uring_enter io_uring_register close_range cachestat
        file_getattr file_setattr ioctl
    """,
    "memory": """
        brk mmap munmap mprotect mremap msync mincore madvise mlock munlock mlockall munlockall mlock2
        remap_file_pages mbind set_mempolicy get_mempolicy migrate_pages move_pages pkey_mprotect pkey_alloc
        pkey_free memfd_create memfd_secret userfaultfd process_madvise process_mrelease set_mempolicy_home_node
        map_shadow_stack mseal process_vm_readv process_vm_writev uselib
    """,
    "process": """
        clone fork vfork clone3 execve execveat exit exit_group wait4 waitid getpid getppid gettid setsid getsid
        setpgid getpgid getpgrp setpriority getpriority sched_yield sched_setparam sched_getparam
        sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval
        sched_setaffinity sched_getaffinity sched_setattr sched_getattr prctl arch_prctl set_tid_address unshare
        setns getrlimit setrlimit prlimit64 getrusage times personality pidfd_open pidfd_getfd kcmp ptrace
        set_robust_list get_robust_list rseq getcpu uretprobe uprobe modify_ldt set_thread_area get_thread_area
        restart_syscall ioprio_get ioprio_set
    """,
    "network": """
        socket connect accept accept4 sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown bind listen
        getsockname getpeername socketpair setsockopt getsockopt
    """,
    "ipc": """
        pipe pipe2 shmget shmat shmctl shmdt semget semop semctl semtimedop msgget msgsnd msgrcv msgctl mq_open
        mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr futex futex_waitv futex_wake futex_wait
        futex_requeue eventfd eventfd2 membarrier
    """,
    "signal": """
        rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_tgsigqueueinfo
        rt_sigsuspend sigaltstack kill tkill tgkill pause signalfd signalfd4 pidfd_send_signal
    """,
    "time": """
        nanosleep clock_nanosleep getitimer setitimer alarm gettimeofday settimeofday time clock_gettime
        clock_settime clock_getres clock_adjtime adjtimex timer_create timer_settime timer_gettime
        timer_getoverrun timer_delete timerfd_create timerfd_settime timerfd_gettime
    """,
    "security": """
        setuid setgid setreuid setregid setresuid getresuid setresgid getresgid getuid getgid geteuid getegid
        setfsuid setfsgid getgroups setgroups capget capset seccomp keyctl add_key request_key
        landlock_create_ruleset landlock_add_rule landlock_restrict_self lsm_get_self_attr lsm_set_self_attr
        lsm_list_modules
    """,
    "system": """
        uname newuname sysinfo syslog reboot mount umount umount2 pivot_root chroot swapon swapoff sethostname
        setdomainname init_module finit_module delete_module create_module query_module get_kernel_syms quotactl
        quotactl_fd nfsservctl acct _sysctl ioperm iopl kexec_load kexec_file_load perf_event_open bpf getrandom
        lookup_dcookie open_tree open_tree_attr move_mount fsopen fsconfig fsmount fspick mount_setattr statmount
        listmount vhangup sysfs
    """,
    # Reserved or unimplemented entries of the table: they fit nowhere else.
    "other": "afs_syscall tuxcall security vserver getpmsg putpmsg",
}

CATEGORIES: tuple[str, ...] = tuple(_LISTS)
_CATEGORY: dict[str, str] = {name: cat for cat, text in _LISTS.items() for name in text.split()}


def category_of(name: str) -> str:
    """The category of a syscall name (``other`` for a name not in the lists)."""
    return _CATEGORY.get(name, "other")


def uncategorised(names) -> list[str]:
    """The names that no list assigns (for the test that the lists cover the table)."""
    return sorted(n for n in names if n not in _CATEGORY)


def syscall_table() -> dict[int, str]:
    """Syscall number -> name for this architecture (bcc's table, completed). Needs bcc importable."""
    from bcc import syscall as bs  # noqa: PLC0415 - bcc is imported only when eBPF is in use

    table = {int(k): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in bs.syscalls.items()}
    machine = os.uname().machine
    if machine == "x86_64":
        for k, v in X86_64_EXTRA.items():
            table.setdefault(k, v)
    for k, v in GENERIC_NEW.items():
        table.setdefault(k, v)
    return table


def kernel_syscall_names(tracefs: str) -> list[str]:
    """The syscalls the running kernel has tracepoints for (``events/syscalls/sys_enter_*``)."""
    try:
        entries = os.listdir(os.path.join(tracefs, "events", "syscalls"))
    except OSError:
        return []
    return sorted(e[len("sys_enter_"):] for e in entries if e.startswith("sys_enter_"))
