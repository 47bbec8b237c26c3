/*
 * ocirt-wait: the container's PID 1 between `create` and `start`.
 *
 * The Python init sets the container up (namespaces, rootfs, credentials, capabilities), then,
 * instead of waiting for `start` inside a whole interpreter (about 10 MiB resident per created
 * container), it executes this program from a sealed memfd (ocirt/init/waiter.py says when, and
 * why that is as safe as the interpreter). While it waits it holds a few pages; then it does
 * exactly what the Python init does after the wait, in the same order:
 *
 *   1. open the exec FIFO for writing: blocks until `start` opens it for reading;
 *   2. load the seccomp filter (last, so that it sees as little as possible before the exec);
 *   3. answer "0", or "E<message>" when the filter cannot be loaded;
 *   4. execve the container's process; if that fails, say why on stderr and exit 255.
 *
 * Until the exec, SIGHUP, SIGINT, SIGQUIT and SIGTERM end it with 128 + the signal (as the
 * Python init): as PID 1 of a pid namespace it would otherwise not even receive them. The
 * Python init blocks them before the handover, so one sent in between stays pending until the
 * handlers are in place.
 *
 * Invocation: argv = {"ocirt-wait", "<data fd>", "<path>", <process.args...>}, envp = the
 * process's environment. The data fd (a memfd, read and closed here) holds struct data and what
 * it points to. Static, no libc, x86-64: hack/gen-waiter builds it into ocirt/init/waiter_elf.py.
 */

typedef unsigned int u32;

#define SYS_close 3
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_pread64 17
#define SYS_write 1
#define SYS_execve 59
#define SYS_prctl 157
#define SYS_openat 257
#define SYS_exit 60
#define SYS_exit_group 231
#define SYS_seccomp 317

#define AT_FDCWD (-100)
#define O_WRONLY 01
#define O_CLOEXEC 02000000
#define PR_SET_DUMPABLE 4
#define PR_SET_NAME 15
#define SA_RESTORER 0x04000000
#define SIG_SETMASK 2
#define SECCOMP_SET_MODE_FILTER 1

#define MAGIC 0x3157434f /* "OCW1" */

struct data {
	u32 magic;
	u32 size;            /* bytes, this header included */
	u32 fifo_fd;         /* O_PATH handle on the exec FIFO, closed once it is open */
	u32 fifo_path;       /* "/proc/self/fd/<fifo_fd>" */
	u32 seccomp_flags;   /* seccomp(2) flags */
	u32 bpf, bpf_len;    /* struct sock_filter[], bytes; bpf_len 0: no filter */
	u32 exec_prefix;     /* "exec '<args[0]>': " */
	u32 seccomp_prefix;  /* "loading seccomp filter: " */
	u32 errors, nerrors; /* u32 offsets of strerror(0) .. strerror(nerrors - 1) */
};
/* Offsets are from the start of the data; every string ends in NUL. */

struct sock_fprog {
	unsigned short len;
	const void *filter;
};

struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

static char buf[65536] __attribute__((aligned(8)));

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}

static long sys4(long n, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return r;
}

static __attribute__((noreturn)) void die(int status)
{
	sys3(SYS_exit_group, status, 0, 0);
	/* Only a seccomp filter can refuse that: then the thread alone, or a fault. */
	sys3(SYS_exit, status, 0, 0);
	__builtin_trap();
}

static unsigned long length(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(int fd, const char *s)
{
	unsigned long n = length(s);
	while (n) {
		long w = sys3(SYS_write, fd, (long)s, n);
		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

static const struct data *d;

static const char *at(u32 off)
{
	return buf + off;
}

static const char *strerror(long err)
{
	const u32 *table = (const u32 *)at(d->errors);
	if (err > 0 && err < d->nerrors)
		return at(table[err]);
	return "unknown error";
}

static void on_termination(int sig)
{
	die(128 + sig);
}

/* Never reached (the handler exits), but x86-64 requires a restorer with every handler. */
extern void restore_rt(void);
__asm__(".text\nrestore_rt:\n\tmov $15, %eax\n\tsyscall\n\thlt\n");

static void read_data(int fd)
{
	unsigned long got = 0;
	for (;;) {
		long n = sys4(SYS_pread64, fd, (long)(buf + got), sizeof(buf) - got, got);
		if (n < 0)
			die(1);
		if (n == 0)
			break;
		got += n;
		if (got == sizeof(buf))
			break;
	}
	sys3(SYS_close, fd, 0, 0);
	d = (const struct data *)buf;
	if (got < sizeof(*d) || d->magic != MAGIC || d->size != got)
		die(1);
}

static int decimal(const char *s)
{
	int n = 0;
	if (!*s)
		die(1);
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			die(1);
		n = n * 10 + (*s - '0');
	}
	return n;
}

__attribute__((used, noreturn)) void wait_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	static const int termination[] = {1, 2, 3, 15}; /* SIGHUP SIGINT SIGQUIT SIGTERM */
	struct kernel_sigaction act;
	unsigned long empty = 0;
	long fifo, r;

	/* The kernel already made us non-dumpable (the memfd is execute-only); say it again. */
	sys3(SYS_prctl, PR_SET_DUMPABLE, 0, 0);
	sys3(SYS_prctl, PR_SET_NAME, (long)"ocirt:[wait]", 0);
	if (argc < 4)
		die(1);
	read_data(decimal(argv[1]));

	act.handler = on_termination;
	act.flags = SA_RESTORER;
	act.restorer = restore_rt;
	act.mask = 0;
	for (int i = 0; i < 4; i++)
		sys4(SYS_rt_sigaction, termination[i], (long)&act, 0, 8);
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);

	fifo = sys4(SYS_openat, AT_FDCWD, (long)at(d->fifo_path), O_WRONLY | O_CLOEXEC, 0);
	if (fifo < 0)
		die(1);
	sys3(SYS_close, d->fifo_fd, 0, 0);

	if (d->bpf_len) {
		struct sock_fprog prog = {(unsigned short)(d->bpf_len / 8), at(d->bpf)};
		r = sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, d->seccomp_flags, (long)&prog);
		if (r < 0) {
			put(fifo, "E");
			put(fifo, at(d->seccomp_prefix));
			put(fifo, strerror(-r));
			die(1);
		}
	}
	sys3(SYS_write, fifo, (long)"0", 1);
	sys3(SYS_close, fifo, 0, 0);

	r = sys3(SYS_execve, (long)argv[2], (long)(argv + 3), (long)envp);
	put(2, at(d->exec_prefix));
	put(2, strerror(-r));
	put(2, "\n");
	die(255);
}

__asm__(".text\n.global _start\n_start:\n"
	"\txor %ebp, %ebp\n"
	"\tmov %rsp, %rdi\n"
	"\tand $-16, %rsp\n"
	"\tcall wait_main\n"
	"\thlt\n");
