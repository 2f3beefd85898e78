/* denet's eBPF programs (tracepoints only; compiled by bcc, see denet/collectors/ebpf.py).
 *
 * The monitored tree is a set of thread-group ids in `tracked`: CMD is added by the fork that
 * creates it (the denet thread that spawns it is in `spawner` for that moment), and every fork of
 * a tracked process adds the child, in the kernel, so short-lived children count from their
 * first instruction. `DENET_STACKS` is defined when user stacks of off-CPU waits are wanted.
 */

struct comm_t {
    char comm[16];
};

struct sc_key_t {
    u32 tgid;
    u32 nr;
};

struct start_t {
    u64 ts;      /* when the thread was last switched in or out */
    u32 tgid;
    u32 state;   /* 0: on CPU since ts; 1 + off-CPU state: switched out at ts */
    s64 stackid; /* user stack of the switch-out (DENET_STACKS), else -1 */
};

struct off_key_t {
    u32 tgid;
    u32 tid;
    u32 state;   /* 0 sleeping (interruptible), 1 I/O (uninterruptible), 2 preempted, 3 on CPU */
    u32 pad;
};

struct off_val_t {
    u64 total_ns;
    u64 count;
    u64 max_ns;
};

#ifdef DENET_STACKS
struct stack_key_t {
    u32 tgid;
    u32 tid;
    s64 stackid;
};
BPF_STACK_TRACE(stacks, 4096);
BPF_HASH(stackwait, struct stack_key_t, struct off_val_t, 16384);
#endif

BPF_HASH(tracked, u32, u8, 65536);
BPF_HASH(spawner, u32, u8, 64);
BPF_HASH(sysc, struct sc_key_t, u64, 65536);
BPF_HASH(start, u32, struct start_t, 65536);
BPF_HASH(offcpu, struct off_key_t, struct off_val_t, 65536);
BPF_HASH(comms, u32, struct comm_t, 65536);
BPF_ARRAY(lost, u64, 1);

static inline void add_time(u32 tgid, u32 tid, u32 state, u64 delta) {
    struct off_key_t k = {};
    k.tgid = tgid;
    k.tid = tid;
    k.state = state;
    struct off_val_t zero = {};
    struct off_val_t *v = offcpu.lookup_or_try_init(&k, &zero);
    if (v == 0) {
        int z = 0;
        lost.increment(z);
        return;
    }
    __sync_fetch_and_add(&v->total_ns, delta);
    __sync_fetch_and_add(&v->count, 1);
    if (delta > v->max_ns)
        v->max_ns = delta;
}

TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tracked.lookup(&tgid) == 0)
        return 0;
    struct sc_key_t k = {};
    k.tgid = tgid;
    k.nr = (u32)args->id;
    u64 zero = 0;
    u64 *v = sysc.lookup_or_try_init(&k, &zero);
    if (v == 0) {
        int z = 0;
        lost.increment(z);
        return 0;
    }
    __sync_fetch_and_add(v, 1);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u32 tid = (u32)id;
    u32 child = args->child_pid;
    if (tracked.lookup(&tgid) == 0 && spawner.lookup(&tid) == 0)
        return 0;
    u8 one = 1;
    tracked.update(&child, &one);
    struct comm_t c = {};
    bpf_get_current_comm(&c.comm, sizeof(c.comm));  /* a child starts with its parent's name */
    comms.update(&child, &c);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tracked.lookup(&tgid) == 0)
        return 0;
    struct comm_t c = {};
    bpf_get_current_comm(&c.comm, sizeof(c.comm));
    comms.update(&tgid, &c);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_free) {
    /* the task is gone for good: its id may be given to another process from now on */
    u32 pid = args->pid;
    tracked.delete(&pid);
    start.delete(&pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_switch) {
    u64 now = bpf_ktime_get_ns();
    u32 prev = args->prev_pid;
    u32 next = args->next_pid;
    u64 id = bpf_get_current_pid_tgid();   /* the task being switched out */
    u32 tgid = id >> 32;
    if (prev != 0 && tracked.lookup(&tgid) != 0) {
        long st = args->prev_state;
        u32 state;
        if (st == 0 || (st & 0x100))       /* TASK_RUNNING, or preempted (TASK_REPORT_MAX) */
            state = 2;
        else if (st & 0x2)                  /* TASK_UNINTERRUPTIBLE: D, waiting on I/O */
            state = 1;
        else
            state = 0;                      /* sleeping (interruptible, stopped, idle, ...) */
        struct start_t *s = start.lookup(&prev);
        if (s != 0 && s->state == 0 && now > s->ts)
            add_time(tgid, prev, 3, now - s->ts);
        struct start_t n = {};
        n.ts = now;
        n.tgid = tgid;
        n.state = state + 1;
        n.stackid = -1;
#ifdef DENET_STACKS
        n.stackid = stacks.get_stackid(args, BPF_F_USER_STACK);
#endif
        start.update(&prev, &n);
    }
    if (next != 0) {
        struct start_t *s = start.lookup(&next);
        if (s != 0 && s->state != 0) {
            u64 delta = now > s->ts ? now - s->ts : 0;
            add_time(s->tgid, next, s->state - 1, delta);
#ifdef DENET_STACKS
            if (s->state != 3) {
                struct stack_key_t sk = {};
                sk.tgid = s->tgid;
                sk.tid = next;
                sk.stackid = s->stackid;
                struct off_val_t zero = {};
                struct off_val_t *v = stackwait.lookup_or_try_init(&sk, &zero);
                if (v != 0) {
                    __sync_fetch_and_add(&v->total_ns, delta);
                    __sync_fetch_and_add(&v->count, 1);
                    if (delta > v->max_ns)
                        v->max_ns = delta;
                }
            }
#endif
            s->ts = now;
            s->state = 0;
        }
    }
    return 0;
}
