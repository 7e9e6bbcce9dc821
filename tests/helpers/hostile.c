/*
 * hostile: what a hostile root inside a Linux jail would try, one attempt per line.
 *
 * Built by tests/containment.rs with `cc -static -O2 -o OUT tests/helpers/hostile.c`
 * and copied into the jail root's /bin. Every attempt is reported on stdout as
 *
 *     DENIED <what> <ERRNO>      the kernel refused it
 *     ALLOWED <what> [detail]    it worked
 *
 * plus a few informational lines (EUID, Cap*, HOSTFILE, JAILFILE, READ, HOLDING,
 * DONE) that the tests parse.
 *
 * SAFETY OF THE HOST: this program runs as root against the real kernel of the test
 * machine, and an implementation under test may be broken. So it never does anything
 * that would harm the host even when the defence it probes is missing:
 *   - files reached through /proc/PID/{exe,map_files,fd} are opened but never written;
 *     the only write ever made through such a descriptor is write(fd, buf, 0), which
 *     writes nothing; no open uses O_TRUNC or O_CREAT;
 *   - /proc/sys/..., /proc/sysrq-trigger and devices are only opened, never written or
 *     read (except the 64-byte read of the masked /proc files);
 *   - every privileged system call is made with arguments that the kernel rejects
 *     (EINVAL, ENOENT, ...) right after its permission check, or that change nothing
 *     (settimeofday(NULL, NULL), a seized-then-abandoned ptrace, keys in the process
 *     keyring, a namespace of its own); so with the defence in place the result is
 *     EPERM and without it a harmless error or no-op, never a reboot, a module, a new
 *     clock, an unloaded kexec image or a swap change.
 *
 * x86_64 only: raw system call numbers are used where libc has no wrapper.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <net/if.h>
#include <time.h>
#include <unistd.h>

#ifndef __x86_64__
#error "hostile.c uses x86_64 system call numbers"
#endif

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) */
#define NR_init_module 175
#define NR_delete_module 176
#define NR_finit_module 313
#define NR_kexec_load 246
#define NR_kexec_file_load 320
#define NR_reboot 169
#define NR_swapon 167
#define NR_swapoff 168
#define NR_acct 163
#define NR_settimeofday 164
#define NR_clock_settime 227
#define NR_adjtimex 159
#define NR_bpf 321
#define NR_perf_event_open 298
#define NR_add_key 248
#define NR_request_key 249
#define NR_keyctl 250
#define NR_open_by_handle_at 304
#define NR_userfaultfd 323
#define NR_mount 165
#define NR_umount2 166
#define NR_pivot_root 155
#define NR_setns 308
#define NR_unshare 272
#define NR_clone 56
#define NR_clone3 435
#define NR_io_uring_setup 425
#define NR_fsopen 430
#define NR_getpid 39
#define X32_SYSCALL_BIT 0x40000000

#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif
#ifndef CLONE_NEWNS
#define CLONE_NEWNS 0x00020000
#endif
#ifndef CLONE_NEWUTS
#define CLONE_NEWUTS 0x04000000
#endif
#define FS_IOC_GETFLAGS_ _IOR('f', 1, long)
#define FS_IOC_SETFLAGS_ _IOW('f', 2, long)
#define FS_IMMUTABLE_FL_ 0x00000010

static const char *ename(int e)
{
    static char buf[32];
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ETXTBSY: return "ETXTBSY";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case ENOTSUP: return "ENOTSUP";
    case ENOEXEC: return "ENOEXEC";
    case ENOKEY: return "ENOKEY";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESTALE: return "ESTALE";
    case ELOOP: return "ELOOP";
    default:
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
    }
}

static void denied(const char *what, int e) { printf("DENIED %s %s\n", what, ename(e)); }
static void allowed(const char *what) { printf("ALLOWED %s\n", what); }

/* Report a system call's result: negative means refused (errno). */
static void report(const char *what, long r)
{
    if (r < 0)
        denied(what, errno);
    else
        allowed(what);
}

/* ------------------------------------------------------------------------ */
/* privileged system calls, each with arguments that harm nothing            */

static void t_finit_module(void)
{
    /* an empty file: even if allowed, the kernel finds no module in it */
    char path[] = "/tmp/.hostile-empty-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        fd = open("/dev/null", O_RDONLY);
    } else {
        unlink(path);
    }
    long r = syscall(NR_finit_module, fd, "", 0);
    report("finit_module", r);
    close(fd);
}

static void t_init_module(void)
{
    static char junk[64]; /* zeros: not an ELF module */
    report("init_module", syscall(NR_init_module, junk, sizeof junk, ""));
}

static void t_delete_module(void)
{
    report("delete_module", syscall(NR_delete_module, "jd_hostile_no_such_module", O_NONBLOCK));
}

static void t_kexec_load(void)
{
    /* flags 0x8000 and 1000 segments are invalid: EINVAL after the permission
     * check. (nr_segments 0 with valid flags would UNLOAD the host's kexec image.) */
    report("kexec_load", syscall(NR_kexec_load, 0UL, 1000UL, NULL, 0x8000UL));
}

static void t_kexec_file_load(void)
{
    /* invalid flags: EINVAL after the permission check */
    report("kexec_file_load", syscall(NR_kexec_file_load, -1, -1, 0UL, NULL, 0x8000UL));
}

static void t_reboot(void)
{
    /* bad magic numbers: EINVAL after the CAP_SYS_BOOT check, never a reboot */
    report("reboot", syscall(NR_reboot, 0, 0, 0, NULL));
}

static void t_swapon(void)
{
    report("swapon", syscall(NR_swapon, "/nonexistent/jd-hostile-swap", 0));
}

static void t_swapoff(void)
{
    report("swapoff", syscall(NR_swapoff, "/nonexistent/jd-hostile-swap"));
}

static void t_acct(void)
{
    /* a path that does not exist: ENOENT after the CAP_SYS_PACCT check (acct(NULL)
     * would switch accounting off) */
    report("acct", syscall(NR_acct, "/nonexistent/jd-hostile-acct"));
}

static void t_settimeofday(void)
{
    /* NULL, NULL: the permission check runs, nothing is set */
    report("settimeofday", syscall(NR_settimeofday, NULL, NULL));
}

static void t_clock_settime(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = -1}; /* invalid: EINVAL */
    report("clock_settime", syscall(NR_clock_settime, CLOCK_REALTIME, &ts));
}

static void t_adjtimex(void)
{
    /* ADJ_TICK with an absurd tick: EPERM without CAP_SYS_TIME, else EINVAL */
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_TICK;
    tx.tick = 1;
    report("adjtimex", syscall(NR_adjtimex, &tx));
}

static void t_bpf(void)
{
    char attr[128];
    memset(attr, 0, sizeof attr); /* BPF_MAP_CREATE of map type 0: EINVAL */
    long r = syscall(NR_bpf, 0, attr, sizeof attr);
    report("bpf", r);
    if (r >= 0)
        close((int)r);
}

static void t_perf_event_open(void)
{
    struct {
        uint32_t type, size;
        uint64_t config;
        char rest[112];
    } attr;
    memset(&attr, 0, sizeof attr);
    attr.type = 1;   /* PERF_TYPE_SOFTWARE */
    attr.size = 128; /* PERF_ATTR_SIZE_VER7-ish; larger zero tail is fine */
    attr.config = 9; /* PERF_COUNT_SW_DUMMY */
    long r = syscall(NR_perf_event_open, &attr, 0, -1, -1, 0UL);
    report("perf_event_open", r);
    if (r >= 0)
        close((int)r);
}

static void t_keyctl(void)
{
    /* KEYCTL_GET_KEYRING_ID of the process keyring, without creating it */
    report("keyctl", syscall(NR_keyctl, 0, -2, 0));
}

static void t_add_key(void)
{
    /* into this process's own keyring, gone when it exits */
    report("add_key", syscall(NR_add_key, "user", "jd-hostile", "x", 1, -2));
}

static void t_request_key(void)
{
    report("request_key", syscall(NR_request_key, "user", "jd-hostile-none", NULL, -2));
}

static void t_open_by_handle_at(void)
{
    /* "shocker": the root inode (2) of the file system holding the jail, which is the
     * host's: with CAP_DAC_READ_SEARCH this opens a directory outside the jail. It is
     * only opened and closed. */
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } h;
    memset(&h, 0, sizeof h);
    h.handle_bytes = 8;
    h.handle_type = 1; /* FILEID_INO32_GEN */
    uint32_t ino = 2, gen = 0;
    memcpy(h.f_handle, &ino, 4);
    memcpy(h.f_handle + 4, &gen, 4);
    int mfd = open("/", O_RDONLY | O_DIRECTORY);
    long r = syscall(NR_open_by_handle_at, mfd, &h, O_RDONLY | O_DIRECTORY);
    report("open_by_handle_at", r);
    if (r >= 0)
        close((int)r);
    close(mfd);
}

static void t_userfaultfd(void)
{
    /* UFFD_USER_MODE_ONLY: allowed to anyone by the kernel, so only a filter stops it */
    long r = syscall(NR_userfaultfd, O_CLOEXEC | 1);
    report("userfaultfd", r);
    if (r >= 0)
        close((int)r);
}

static void t_io_uring_setup(void)
{
    char params[120];
    memset(params, 0, sizeof params);
    long r = syscall(NR_io_uring_setup, 1, params);
    report("io_uring_setup", r);
    if (r >= 0)
        close((int)r);
}

static void t_mount(void)
{
    /* a tmpfs on /tmp (exists in every busybox root); in the jail's mount namespace */
    long r = syscall(NR_mount, "tmpfs", "/tmp", "tmpfs", 0UL, "size=1m");
    report("mount", r);
    if (r == 0)
        syscall(NR_umount2, "/tmp", MNT_DETACH);
}

static void t_umount2(void)
{
    /* detaching the read-only /proc/sys would uncover a writable one */
    report("umount2", syscall(NR_umount2, "/proc/sys", MNT_DETACH));
}

static void t_pivot_root(void)
{
    report("pivot_root", syscall(NR_pivot_root, "/nonexistent-a", "/nonexistent-b"));
}

static void t_fsopen(void)
{
    long r = syscall(NR_fsopen, "tmpfs", 0);
    report("fsopen", r);
    if (r >= 0)
        close((int)r);
}

static void t_setns(void)
{
    int fd = open("/proc/self/ns/uts", O_RDONLY);
    if (fd < 0) {
        denied("setns-open", errno);
        return;
    }
    report("setns", syscall(NR_setns, fd, CLONE_NEWUTS));
    close(fd);
}

static void child_exit_status(long pid, const char *what)
{
    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        denied(what, errno);
        return;
    }
    int st;
    waitpid((pid_t)pid, &st, __WALL);
    allowed(what);
}

/* unshare(2) in a child, so that a success does not move this process (and the
 * attempts after it) into a new namespace */
static void unshare_in_child(int flags, const char *what)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(syscall(NR_unshare, flags) == 0 ? 0 : (errno & 0xff));
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        allowed(what);
    else if (WIFEXITED(st))
        denied(what, WEXITSTATUS(st));
    else
        denied(what, 0);
}

static void t_unshare_user(void)
{
    unshare_in_child(CLONE_NEWUSER, "unshare_user");
}

static void t_unshare_mnt(void)
{
    unshare_in_child(CLONE_NEWNS, "unshare_mnt");
}

static void t_clone_newuser(void)
{
    /* a fork-like raw clone into a new user namespace; the child exits at once */
    long pid = syscall(NR_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
    child_exit_status(pid, "clone_newuser");
}

static void t_clone_newns(void)
{
    long pid = syscall(NR_clone, (unsigned long)(CLONE_NEWNS | SIGCHLD), NULL, NULL, NULL, 0UL);
    child_exit_status(pid, "clone_newns");
}

static void t_clone3_newuser(void)
{
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    long pid = syscall(NR_clone3, &args, sizeof args);
    child_exit_status(pid, "clone3_newuser");
}

static void t_x32(void)
{
    long r = syscall(X32_SYSCALL_BIT | NR_getpid);
    report("x32_getpid", r);
}

struct test {
    const char *name;
    void (*fn)(void);
};

static const struct test TESTS[] = {
    {"finit_module", t_finit_module},
    {"init_module", t_init_module},
    {"delete_module", t_delete_module},
    {"kexec_load", t_kexec_load},
    {"kexec_file_load", t_kexec_file_load},
    {"reboot", t_reboot},
    {"swapon", t_swapon},
    {"swapoff", t_swapoff},
    {"acct", t_acct},
    {"settimeofday", t_settimeofday},
    {"clock_settime", t_clock_settime},
    {"adjtimex", t_adjtimex},
    {"bpf", t_bpf},
    {"perf_event_open", t_perf_event_open},
    {"keyctl", t_keyctl},
    {"add_key", t_add_key},
    {"request_key", t_request_key},
    {"open_by_handle_at", t_open_by_handle_at},
    {"userfaultfd", t_userfaultfd},
    {"io_uring_setup", t_io_uring_setup},
    {"mount", t_mount},
    {"umount2", t_umount2},
    {"pivot_root", t_pivot_root},
    {"fsopen", t_fsopen},
    {"setns", t_setns},
    {"unshare_user", t_unshare_user},
    {"unshare_mnt", t_unshare_mnt},
    {"clone_newuser", t_clone_newuser},
    {"clone_newns", t_clone_newns},
    {"clone3_newuser", t_clone3_newuser},
    {"x32_getpid", t_x32},
    {NULL, NULL},
};

/* ------------------------------------------------------------------------ */
/* /proc exposure of other processes                                          */

#define MAX_HELD 1024
static struct {
    int fd;
    char what[PATH_MAX + 64];
} held[MAX_HELD];
static int nheld;

/* Try to open PATH with FLAGS; report; keep the descriptor when HOLD, else close. */
static void try_open(const char *path, int flags, const char *mode, int hold)
{
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "%s %s", mode, path);
    int fd = open(path, flags);
    if (fd < 0) {
        denied(what, errno);
        return;
    }
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("ALLOWED %s -> %s\n", what, n > 0 ? target : "?");
    if (hold && nheld < MAX_HELD) {
        held[nheld].fd = fd;
        snprintf(held[nheld].what, sizeof held[nheld].what, "%s", what);
        nheld++;
    } else {
        close(fd);
    }
}

static void try_readlink(const char *path)
{
    char what[PATH_MAX + 64], target[PATH_MAX];
    snprintf(what, sizeof what, "readlink %s", path);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
        denied(what, errno);
        return;
    }
    target[n] = 0;
    printf("ALLOWED %s -> %s\n", what, target);
}

/* Every way into another process's files: exe, map_files (listed, and guessed from
 * maps), fd, root, cwd, mem, environ. Opens for reading and for writing (O_APPEND,
 * never O_TRUNC); nothing is ever written here. */
static void expose(const char *pid, int hold)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "/proc/%s/exe", pid);
    try_readlink(p);
    try_open(p, O_RDONLY, "open-rdonly", hold);
    try_open(p, O_WRONLY | O_APPEND, "open-wronly", hold);
    try_open(p, O_PATH, "open-path", hold);

    snprintf(p, sizeof p, "/proc/%s/map_files", pid);
    DIR *d = opendir(p);
    if (!d) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "opendir %s", p);
        denied(what, errno);
    } else {
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d)) && n < 256) {
            if (e->d_name[0] == '.')
                continue;
            char f[PATH_MAX + 300];
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            try_readlink(f);
            try_open(f, O_RDONLY, "open-rdonly", hold);
            try_open(f, O_WRONLY | O_APPEND, "open-wronly", hold);
            n++;
        }
        closedir(d);
        printf("INFO map_files %s entries %d\n", pid, n);
    }
    /* map_files entries guessed from the maps (when listing is refused but maps is not) */
    snprintf(p, sizeof p, "/proc/%s/maps", pid);
    FILE *m = fopen(p, "r");
    if (!m) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "open-rdonly %s", p);
        denied(what, errno);
    } else {
        char line[1024];
        int n = 0;
        while (fgets(line, sizeof line, m) && n < 256) {
            char range[64];
            if (sscanf(line, "%63s", range) != 1 || !strchr(line, '/'))
                continue;
            char f[PATH_MAX + 300];
            snprintf(f, sizeof f, "/proc/%s/map_files/%s", pid, range);
            try_open(f, O_WRONLY | O_APPEND, "open-wronly", hold);
            n++;
        }
        fclose(m);
        /* maps names files but opens none: information only */
        printf("INFO read %s (%d file mappings)\n", p, n);
    }

    snprintf(p, sizeof p, "/proc/%s/fd", pid);
    d = opendir(p);
    if (!d) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "opendir %s", p);
        denied(what, errno);
    } else {
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d)) && n < 256) {
            if (e->d_name[0] == '.')
                continue;
            char f[PATH_MAX + 300];
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            try_readlink(f);
            try_open(f, O_RDONLY | O_NONBLOCK, "open-rdonly", hold);
            n++;
        }
        closedir(d);
        printf("INFO fd %s entries %d\n", pid, n);
    }
    /* the first descriptors, without listing */
    for (int i = 0; i < 16; i++) {
        snprintf(p, sizeof p, "/proc/%s/fd/%d", pid, i);
        int fd = open(p, O_RDONLY | O_NONBLOCK);
        if (fd >= 0) {
            char what[PATH_MAX + 64];
            snprintf(what, sizeof what, "open-rdonly %s", p);
            printf("ALLOWED %s\n", what);
            if (hold && nheld < MAX_HELD) {
                held[nheld].fd = fd;
                snprintf(held[nheld].what, sizeof held[nheld].what, "%s", what);
                nheld++;
            } else {
                close(fd);
            }
        }
    }

    snprintf(p, sizeof p, "/proc/%s/root", pid);
    try_readlink(p);
    try_open(p, O_RDONLY | O_DIRECTORY, "open-rdonly", hold);
    snprintf(p, sizeof p, "/proc/%s/cwd", pid);
    try_readlink(p);
    try_open(p, O_RDONLY | O_DIRECTORY, "open-rdonly", hold);
    snprintf(p, sizeof p, "/proc/%s/mem", pid);
    try_open(p, O_RDONLY, "open-rdonly", 0);
    snprintf(p, sizeof p, "/proc/%s/environ", pid);
    try_open(p, O_RDONLY, "open-rdonly", 0);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* hold GOFILE PID...: open all, keep, wait for GOFILE, then try to write through what
 * was kept (zero bytes) and to reopen it for writing (never written). */
static int cmd_hold(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hostile hold GOFILE PID...\n");
        return 2;
    }
    const char *go = argv[2];
    for (int i = 3; i < argc; i++)
        expose(argv[i], 1);
    printf("HOLDING %d\n", nheld);
    for (int i = 0; !file_exists(go); i++) {
        if (i > 6000) { /* 300 s */
            printf("TIMEOUT\n");
            return 1;
        }
        usleep(50000);
    }
    for (int i = 0; i < nheld; i++) {
        char what[PATH_MAX + 128];
        snprintf(what, sizeof what, "write0 %s", held[i].what);
        char nothing[1] = {0};
        /* ZERO bytes: detects a writable descriptor without changing the file */
        report(what, write(held[i].fd, nothing, 0));
        /* CVE-2019-5736: reopen the held descriptor for writing once its owner is gone */
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", held[i].fd);
        snprintf(what, sizeof what, "reopen-wronly %s", held[i].what);
        int fd = open(self, O_WRONLY | O_APPEND);
        report(what, fd);
        if (fd >= 0)
            close(fd);
    }
    /* the same again, fresh, now that the daemon and jailctl are gone */
    for (int i = 3; i < argc; i++)
        expose(argv[i], 0);
    printf("DONE\n");
    return 0;
}

/* scan: for every other process visible in the jail, is any host file reachable
 * through its exe, map_files, fd, root or cwd links? A file is the jail's own when
 * the opened file is the very file (device and inode) the link names inside the
 * jail; anything else (including a link that opens but cannot be read) is a host
 * file. */
static void classify(const char *pid, const char *link, int flags)
{
    int fd = open(link, flags | O_NONBLOCK);
    if (fd < 0)
        return;
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    struct stat a, b;
    if (fstat(fd, &a) != 0) {
        close(fd);
        return;
    }
    close(fd);
    if (S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) {
        /* a device node: reopening it is the devices cgroup's business */
        printf("DEVICE %s %s -> %s %u:%u\n", pid, link, n > 0 ? target : "?",
               major(a.st_rdev), minor(a.st_rdev));
        return;
    }
    if (n > 0 && target[0] != '/') {
        printf("OTHER %s %s -> %s\n", pid, link, target); /* pipe:, socket:, anon_inode: */
        return;
    }
    if (n > 0 && stat(target, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        printf("JAILFILE %s %s -> %s\n", pid, link, target);
    else
        printf("HOSTFILE %s %s -> %s\n", pid, link, n > 0 ? target : "?");
}

static int cmd_scan(void)
{
    char me[32];
    snprintf(me, sizeof me, "%d", getpid());
    DIR *d = opendir("/proc");
    if (!d) {
        denied("opendir /proc", errno);
        return 1;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || strcmp(e->d_name, me) == 0)
            continue;
        n++;
        char p[PATH_MAX], comm[64] = "?";
        snprintf(p, sizeof p, "/proc/%s/comm", e->d_name);
        FILE *c = fopen(p, "r");
        if (c) {
            if (fgets(comm, sizeof comm, c))
                comm[strcspn(comm, "\n")] = 0;
            fclose(c);
        }
        printf("PID %s %s\n", e->d_name, comm);
        snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
        classify(e->d_name, p, O_RDONLY);
        snprintf(p, sizeof p, "/proc/%s/root", e->d_name);
        classify(e->d_name, p, O_RDONLY | O_DIRECTORY);
        snprintf(p, sizeof p, "/proc/%s/cwd", e->d_name);
        classify(e->d_name, p, O_RDONLY | O_DIRECTORY);
        const char *dirs[] = {"map_files", "fd"};
        for (int k = 0; k < 2; k++) {
            char dp[512];
            snprintf(dp, sizeof dp, "/proc/%s/%s", e->d_name, dirs[k]);
            DIR *dd = opendir(dp);
            if (!dd)
                continue;
            struct dirent *f;
            while ((f = readdir(dd))) {
                if (f->d_name[0] == '.')
                    continue;
                snprintf(p, sizeof p, "%s/%s", dp, f->d_name);
                classify(e->d_name, p, O_RDONLY);
            }
            closedir(dd);
        }
    }
    closedir(d);
    printf("SCANNED %d\n", n);
    return 0;
}

/* ------------------------------------------------------------------------ */

static void print_caps(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        denied("open /proc/self/status", errno);
        return;
    }
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Seccomp:", 8))
            fputs(line, stdout);
    fclose(f);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: hostile all | SYSCALL-TEST | caps | euid | procexpose PID... |\n"
            "       hold GOFILE PID... | scan | open PATH... | openw PATH... |\n"
            "       readmask PATH... | mknod PATH b|c MAJOR MINOR | mount_tmpfs DIR |\n"
            "       ptrace PID | bind PORT | rawsock | netadmin | mlock | chattr FILE | list\n");
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];

    if (!strcmp(cmd, "list")) {
        for (const struct test *t = TESTS; t->name; t++)
            printf("%s\n", t->name);
        return 0;
    }
    if (!strcmp(cmd, "all")) {
        for (const struct test *t = TESTS; t->name; t++)
            t->fn();
        return 0;
    }
    for (const struct test *t = TESTS; t->name; t++)
        if (!strcmp(cmd, t->name)) {
            t->fn();
            return 0;
        }
    /* aliases of the brief */
    if (!strcmp(cmd, "kexec")) {
        t_kexec_load();
        t_kexec_file_load();
        return 0;
    }
    if (!strcmp(cmd, "x32")) {
        t_x32();
        return 0;
    }
    if (!strcmp(cmd, "caps")) {
        print_caps();
        return 0;
    }
    if (!strcmp(cmd, "euid")) {
        printf("EUID %d UID %d\n", (int)geteuid(), (int)getuid());
        print_caps();
        return 0;
    }
    if (!strcmp(cmd, "procexpose")) {
        for (int i = 2; i < argc; i++)
            expose(argv[i], 0);
        return 0;
    }
    if (!strcmp(cmd, "hold"))
        return cmd_hold(argc, argv);
    if (!strcmp(cmd, "scan"))
        return cmd_scan();
    if (!strcmp(cmd, "open")) {
        /* read-only, non-blocking, nothing read */
        for (int i = 2; i < argc; i++)
            try_open(argv[i], O_RDONLY | O_NONBLOCK, "open-rdonly", 0);
        return 0;
    }
    if (!strcmp(cmd, "openw")) {
        /* opened for writing and closed: nothing is ever written */
        for (int i = 2; i < argc; i++)
            try_open(argv[i], O_WRONLY | O_NONBLOCK, "open-wronly", 0);
        return 0;
    }
    if (!strcmp(cmd, "readmask")) {
        for (int i = 2; i < argc; i++) {
            char what[PATH_MAX + 64];
            snprintf(what, sizeof what, "open-rdonly %s", argv[i]);
            int fd = open(argv[i], O_RDONLY | O_NONBLOCK);
            if (fd < 0) {
                denied(what, errno);
                continue;
            }
            char buf[64];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0) {
                snprintf(what, sizeof what, "read %s", argv[i]);
                denied(what, errno);
            } else {
                printf("READ %s %zd\n", argv[i], n);
            }
            close(fd);
        }
        return 0;
    }
    if (!strcmp(cmd, "mknod") && argc == 6) {
        mode_t type = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
        dev_t dev = makedev(atoi(argv[4]), atoi(argv[5]));
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "mknod %s", argv[2]);
        report(what, mknod(argv[2], type | 0600, dev));
        return 0;
    }
    if (!strcmp(cmd, "mount_tmpfs") && argc == 3) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "mount_tmpfs %s", argv[2]);
        report(what, mount("tmpfs", argv[2], "tmpfs", 0, "size=1m"));
        return 0;
    }
    if (!strcmp(cmd, "ptrace") && argc == 3) {
        /* PTRACE_SEIZE does not stop the tracee; exiting detaches */
        char what[64];
        snprintf(what, sizeof what, "ptrace %s", argv[2]);
        report(what, ptrace(PTRACE_SEIZE, (pid_t)atoi(argv[2]), NULL, NULL));
        return 0;
    }
    if (!strcmp(cmd, "bind") && argc == 3) {
        int port = atoi(argv[2]);
        char what[64];
        snprintf(what, sizeof what, "bind %d", port);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            denied("socket", errno);
            return 0;
        }
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = bind(s, (struct sockaddr *)&a, sizeof a);
        if (r == 0)
            r = listen(s, 1);
        report(what, r);
        close(s);
        return 0;
    }
    if (!strcmp(cmd, "rawsock")) {
        int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        report("rawsock", s);
        if (s >= 0)
            close(s);
        s = socket(AF_PACKET, SOCK_RAW, 0);
        report("packetsock", s);
        if (s >= 0)
            close(s);
        return 0;
    }
    if (!strcmp(cmd, "netadmin")) {
        /* SIOCSIFFLAGS on lo with the flags it already has: needs CAP_NET_ADMIN over
         * the network namespace, changes nothing */
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0) {
            denied("socket", errno);
            return 0;
        }
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
            denied("netadmin-getflags", errno);
            close(s);
            return 0;
        }
        report("netadmin", ioctl(s, SIOCSIFFLAGS, &ifr));
        close(s);
        return 0;
    }
    if (!strcmp(cmd, "mlock")) {
        /* with RLIMIT_MEMLOCK 0, only CAP_IPC_LOCK lets mlock through */
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
            denied("setrlimit", errno);
            return 0;
        }
        long pg = sysconf(_SC_PAGESIZE);
        void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r = mlock(p, pg);
        report("mlock", r);
        if (r == 0)
            munlock(p, pg);
        return 0;
    }
    if (!strcmp(cmd, "chattr") && argc == 3) {
        /* set and at once clear the immutable flag of a file of the jail */
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
            denied("chattr-open", errno);
            return 0;
        }
        long flags = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS_, &flags) != 0) {
            denied("chattr-getflags", errno);
            close(fd);
            return 0;
        }
        long on = flags | FS_IMMUTABLE_FL_;
        int r = ioctl(fd, FS_IOC_SETFLAGS_, &on);
        report("chattr_immutable", r);
        if (r == 0) {
            long off = flags & ~FS_IMMUTABLE_FL_;
            report("chattr_clear", ioctl(fd, FS_IOC_SETFLAGS_, &off));
        }
        close(fd);
        return 0;
    }
    return usage();
}
