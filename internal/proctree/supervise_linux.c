//go:build cgo

// The handler supervisor of package proctree (doc.go; the Go side is
// supervise_linux.go). It runs as an ELF constructor of any program that
// links the package, before the Go runtime starts, in a process started
// with DAGUQ_PROCTREE_SUPERVISE in its environment; otherwise it returns at
// once. Starting the Go runtime would cost a few milliseconds per batch;
// this costs about what an exec costs.
//
// One supervisor serves one command at a time, many in turn: the Go side
// keeps it between commands (Starter), so a batch costs no exec of its own.
// Protocol on the socket at fd 3, to the starting process: "ready\n" once,
// then per command "pid N\n" (it started) or "errno N STAGE\n" (it did
// not: STAGE is chdir or exec), then "exit WAITSTATUS\n" when no process
// of the tree is left. From the starting process: a request (pt_req), then
// while the command runs one byte per signal to forward (SIGKILL: kill the
// whole tree now); between commands 'Q' to quit. End of file means that
// process died: kill the tree, remove the cleanup directory.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PT_SWITCH "DAGUQ_PROCTREE_SUPERVISE"
#define PT_PROTOCOL "2"
#define PT_PROTOCOL_STAT "2-stat" // tests: find children through /proc/PID/stat
#define PT_CTL 3
#define PT_MAX_PIDS 65536
#define PT_REQ_RUN 'R'  // above every signal number: a late signal byte is no request
#define PT_REQ_QUIT 'Q'

extern char **environ;

static pid_t pt_self;     // the supervisor
static pid_t pt_handler;  // the handler, also its process group
static int pt_status;     // its wait status, once reaped
static int pt_reaped;     // reaped: its pid may be reused
static int pt_children_files; // /proc/PID/task/TID/children exists

// pt_say writes one protocol line; MSG_NOSIGNAL: no SIGPIPE when the
// starting process is gone.
static void pt_say(const char *fmt, ...) {
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (int off = 0; off < n;) {
		ssize_t w = send(PT_CTL, buf + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

// pt_readall reads a file (of /proc) whole, NUL-terminated; NULL if it
// cannot be opened.
static char *pt_readall(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 1024, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	if (buf) {
		buf[n] = 0;
		if (len)
			*len = n;
	}
	return buf;
}

struct pt_pids {
	pid_t *v;
	size_t n, cap;
};

static void pt_add(struct pt_pids *l, pid_t p) {
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		pid_t *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
}

struct pt_proc {
	pid_t pid, ppid;
};

// pt_scan lists every process with its parent, from /proc/PID/stat; the
// caller frees *out. A process that exists through the whole scan is
// listed (the directory of /proc is read in pid order).
static size_t pt_scan(struct pt_proc **out) {
	size_t n = 0, cap = 0;
	*out = NULL;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *end;
		long p = strtol(e->d_name, &end, 10);
		if (*end || p <= 0)
			continue;
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/stat", p);
		char *b = pt_readall(path, NULL);
		if (!b)
			continue;
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		char *r = strrchr(b, ')');
		char state;
		int ppid;
		if (r && sscanf(r + 1, " %c %d", &state, &ppid) == 2) {
			if (n == cap) {
				size_t c = cap ? 2 * cap : 256;
				struct pt_proc *v = realloc(*out, c * sizeof *v);
				if (!v) {
					free(b);
					break;
				}
				*out = v;
				cap = c;
			}
			(*out)[n].pid = (pid_t)p;
			(*out)[n].ppid = (pid_t)ppid;
			n++;
		}
		free(b);
	}
	if (d)
		closedir(d);
	return n;
}

// pt_children appends our own children: from our tasks' children files, or
// from a scan of /proc on a kernel without them (CONFIG_PROC_CHILDREN). The
// files may miss a child while others come and go; pt_kill_all repeats
// until none is left, so a miss only costs a round.
static void pt_children(struct pt_pids *out) {
	if (!pt_children_files) {
		struct pt_proc *ps;
		size_t n = pt_scan(&ps);
		for (size_t i = 0; i < n; i++)
			if (ps[i].ppid == pt_self)
				pt_add(out, ps[i].pid);
		free(ps);
		return;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pt_self);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char file[320];
		snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pt_self, e->d_name);
		char *b = pt_readall(file, NULL);
		if (!b)
			continue;
		for (char *s = b, *end;; s = end) {
			long k = strtol(s, &end, 10);
			if (end == s)
				break;
			pt_add(out, (pid_t)k);
		}
		free(b);
	}
	if (d)
		closedir(d);
}

// pt_descendants appends every process below us, from one scan of /proc
// (the children files are not reliable for a parent whose other children
// come and go, as a shell's loop makes them).
static void pt_descendants(struct pt_pids *all) {
	struct pt_proc *ps;
	size_t n = pt_scan(&ps);
	pid_t parent = pt_self;
	for (size_t next = 0;; parent = all->v[next++]) {
		for (size_t i = 0; i < n && all->n < PT_MAX_PIDS; i++)
			if (ps[i].ppid == parent)
				pt_add(all, ps[i].pid);
		if (next >= all->n)
			break;
	}
	free(ps);
}

// pt_reap collects every child that has ended; it reports whether any
// child is left.
static int pt_reap(void) {
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p > 0) {
			if (p == pt_handler) {
				pt_status = st;
				pt_reaped = 1;
			}
			continue;
		}
		if (p == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return 0; // ECHILD
	}
}

// pt_kill_all kills every process of the tree and reaps it, round by round
// while any child is left: the handler's group while its leader is unreaped
// (so its id cannot be reused), and our own children, the handler and the
// orphans the kernel gave us as their parents died. A process further down
// becomes our child when its parent dies, so a later round gets it. Only our
// unreaped children are killed by pid: no pid reuse can make us kill a
// stranger.
static void pt_kill_all(void) {
	while (pt_reap()) {
		if (!pt_reaped)
			kill(-pt_handler, SIGKILL);
		struct pt_pids kids = {0};
		pt_children(&kids);
		for (size_t i = 0; i < kids.n; i++)
			kill(kids.v[i], SIGKILL);
		free(kids.v);
		int st;
		pid_t p = waitpid(-1, &st, 0);
		if (p == pt_handler) {
			pt_status = st;
			pt_reaped = 1;
		}
	}
}

static int pt_has(const struct pt_pids *l, pid_t p) {
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == p)
			return 1;
	return 0;
}

// pt_forward sends a stop signal to the handler's group and to every
// process of the tree outside it (setsid): each gets it once. The tree is
// listed before the group gets the signal, as a process whose parent exits
// on it moves up to us meanwhile and could be missed by a walk under way;
// a second walk then finds what changed place.
static void pt_forward(int sig) {
	struct pt_pids before = {0}, after = {0};
	pt_descendants(&before);
	if (!pt_reaped)
		kill(-pt_handler, sig);
	for (int round = 0; round < 2; round++) {
		struct pt_pids *l = round == 0 ? &before : &after;
		if (round == 1)
			pt_descendants(&after);
		for (size_t i = 0; i < l->n; i++) {
			if (round == 1 && pt_has(&before, l->v[i]))
				continue;
			pid_t pg = getpgid(l->v[i]);
			if (pg >= 0 && (pt_reaped || pg != pt_handler))
				kill(l->v[i], sig);
		}
	}
	free(before.v);
	free(after.v);
}

static int pt_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

// pt_recv reads exactly n bytes of a request; descriptors that come with
// them (SCM_RIGHTS, close-on-exec) are added to fds, up to 2. It returns 0,
// or -1 at end of file or on an error.
static int pt_recv(void *buf, size_t n, int *fds, int *nfds) {
	for (size_t off = 0; off < n;) {
		char ctl[CMSG_SPACE(4 * sizeof(int))];
		struct iovec iov = {.iov_base = (char *)buf + off, .iov_len = n - off};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
		ssize_t r = recvmsg(PT_CTL, &m, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int *v = (int *)CMSG_DATA(c);
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				if (*nfds < 2)
					fds[(*nfds)++] = v[i];
				else
					close(v[i]);
			}
		}
		off += r;
	}
	return 0;
}

// A request to run a command: the byte PT_REQ_RUN, its length (4 bytes,
// little endian) and NUL-terminated strings: path, working directory ("" to
// keep ours), argument count, the arguments, then the environment; with it
// two descriptors, the command's stdin and its output (stdout and stderr).
struct pt_req {
	char *buf;
	const char *path, *dir;
	char **argv, **envp;
	int fds[2], nfds;
};

static void pt_req_free(struct pt_req *q) {
	for (int i = 0; i < q->nfds; i++)
		close(q->fds[i]);
	free(q->buf);
	free(q->argv);
	free(q->envp);
	memset(q, 0, sizeof *q);
}

// pt_read_req reads the rest of a request after its first byte; -1 when the
// starting process is gone or sent something malformed.
static int pt_read_req(struct pt_req *q) {
	unsigned char len[4];
	if (pt_recv(len, 4, q->fds, &q->nfds) != 0)
		return -1;
	size_t n = (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24;
	q->buf = malloc(n + 1);
	if (!q->buf || pt_recv(q->buf, n, q->fds, &q->nfds) != 0 || q->nfds != 2)
		return -1;
	q->buf[n] = 0;
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += q->buf[i] == 0;
	if (n == 0 || q->buf[n - 1] != 0 || count < 3)
		return -1;
	char **words = calloc(count + 1, sizeof *words);
	if (!words)
		return -1;
	char *s = q->buf;
	for (size_t i = 0; i < count; i++) {
		words[i] = s;
		s += strlen(s) + 1;
	}
	q->path = words[0];
	q->dir = words[1];
	char *end;
	long argc = strtol(words[2], &end, 10);
	if (*end || argc < 1 || (size_t)argc > count - 3) {
		free(words);
		return -1;
	}
	q->argv = calloc(argc + 1, sizeof *q->argv);
	q->envp = calloc(count - 3 - argc + 1, sizeof *q->envp);
	if (!q->argv || !q->envp) {
		free(words);
		return -1;
	}
	memcpy(q->argv, words + 3, argc * sizeof *words);
	memcpy(q->envp, words + 3 + argc, (count - 3 - argc) * sizeof *words);
	free(words);
	return 0;
}

static sigset_t pt_oldmask;       // the mask we were started with: the command's
static struct sigaction pt_oldchld; // the SIGCHLD disposition we were started with
static int pt_sfd;                // our signals

// pt_run runs one command and supervises its tree until no process of it
// is left; it says "pid N" or "errno N STAGE", then "exit WAITSTATUS". It
// returns -1 when the starting process is gone (the tree was killed).
static int pt_run(struct pt_req *q) {
	pt_reaped = 0;
	pt_status = 0;
	int ep[2]; // the child's error, if any: errno and the stage
	if (pipe2(ep, O_CLOEXEC) != 0) {
		pt_say("errno %d exec\n", errno);
		return 0;
	}
	// vfork: the child borrows our memory until its exec, so no copy of
	// this process's page tables is made per command. It only makes system
	// calls and writes to the pipe before it execs or exits.
	pid_t pid = vfork();
	if (pid == 0) {
		sigaction(SIGCHLD, &pt_oldchld, NULL);
		sigprocmask(SIG_SETMASK, &pt_oldmask, NULL);
		setpgid(0, 0);
		// If we die (SIGKILL), so does the handler.
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != pt_self)
			_exit(127);
		int e[2] = {0, 0};
		if (q->dir[0] && chdir(q->dir) != 0) {
			e[0] = errno;
			e[1] = 1;
		} else if (dup2(q->fds[0], 0) < 0 || dup2(q->fds[1], 1) < 0 || dup2(q->fds[1], 2) < 0) {
			e[0] = errno;
		} else {
			execve(q->path, q->argv, q->envp);
			e[0] = errno;
		}
		while (write(ep[1], e, sizeof e) < 0 && errno == EINTR) {
		}
		_exit(127);
	}
	int forkerr = errno;
	pt_handler = pid;
	close(ep[1]);
	// Only the command holds its stdin and output now: its output ends
	// with the tree.
	for (int i = 0; i < q->nfds; i++)
		close(q->fds[i]);
	q->nfds = 0;
	if (pt_handler < 0) {
		close(ep[0]);
		pt_say("errno %d exec\n", forkerr);
		return 0;
	}
	int e[2];
	ssize_t n;
	while ((n = read(ep[0], e, sizeof e)) < 0 && errno == EINTR) {
	}
	close(ep[0]);
	if (n == sizeof e) {
		waitpid(pt_handler, NULL, 0);
		pt_say("errno %d %s\n", e[0], e[1] ? "chdir" : "exec");
		return 0;
	}
	pt_say("pid %d\n", (int)pt_handler);

	int stopping = 0;
	for (;;) {
		struct pollfd fds[2] = {{.fd = PT_CTL, .events = POLLIN}, {.fd = pt_sfd, .events = POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents) {
			struct signalfd_siginfo si[8];
			ssize_t r = read(pt_sfd, si, sizeof si);
			for (ssize_t i = 0; r > 0 && i < r / (ssize_t)sizeof si[0]; i++) {
				if (si[i].ssi_signo != SIGCHLD) {
					pt_forward(si[i].ssi_signo);
					stopping = 1;
				}
			}
		}
		if (fds[0].revents) {
			unsigned char cmd[64];
			ssize_t r = read(PT_CTL, cmd, sizeof cmd);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) { // the starting process is gone: nobody waits for the tree
				pt_kill_all();
				return -1;
			}
			for (ssize_t i = 0; i < r; i++) {
				if (cmd[i] == SIGKILL) {
					pt_kill_all();
				} else {
					pt_forward(cmd[i]);
					stopping = 1;
				}
			}
		}
		int left = pt_reap();
		if (pt_reaped && (!left || !stopping))
			break;
	}
	// The handler is done. Without a stop, whatever it left running dies
	// now; after a stop, nothing is left at this point.
	pt_kill_all();
	pt_say("exit %d\n", pt_status);
	return 0;
}

// pt_supervise serves requests one at a time until the starting process
// says quit (PT_REQ_QUIT) or is gone. When it is gone, the cleanup
// directory is removed too.
static int pt_supervise(const char *cleanup, int stat_only) {
	pt_self = getpid();
	char probe[96];
	snprintf(probe, sizeof probe, "/proc/%d/task/%d/children", (int)pt_self, (int)pt_self);
	pt_children_files = !stat_only && access(probe, F_OK) == 0;
	fcntl(PT_CTL, F_SETFD, FD_CLOEXEC); // the handler must not hold the socket
	// Orphans of the tree (setsid, double fork) come to us, not to init.
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	// Signals arrive on a descriptor; the handler gets the mask and the
	// SIGCHLD disposition we were started with.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, &pt_oldmask);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGCHLD, &dfl, &pt_oldchld); // an inherited SIG_IGN would reap the handler for us
	pt_sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (pt_sfd < 0)
		return 1;
	pt_say("ready\n");

	for (;;) {
		struct pollfd fds[2] = {{.fd = PT_CTL, .events = POLLIN}, {.fd = pt_sfd, .events = POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (fds[1].revents) {
			struct signalfd_siginfo si[8];
			ssize_t r = read(pt_sfd, si, sizeof si);
			for (ssize_t i = 0; r > 0 && i < r / (ssize_t)sizeof si[0]; i++)
				if (si[i].ssi_signo != SIGCHLD)
					return 0; // told to stop while no command runs
			pt_reap();
		}
		if (!fds[0].revents)
			continue;
		unsigned char b;
		struct pt_req q = {0}; // the descriptors come with the first byte
		if (pt_recv(&b, 1, q.fds, &q.nfds) != 0) { // the starting process is gone
			pt_req_free(&q);
			if (cleanup[0])
				nftw(cleanup, pt_remove, 16, FTW_DEPTH | FTW_PHYS);
			return 0;
		}
		if (b != PT_REQ_RUN)
			pt_req_free(&q);
		if (b == PT_REQ_QUIT)
			return 0;
		if (b != PT_REQ_RUN)
			continue; // a signal for a command that has ended
		if (pt_read_req(&q) != 0) {
			pt_req_free(&q);
			pt_say("errno %d exec\n", EINVAL);
			return 1;
		}
		int gone = pt_run(&q) != 0;
		pt_req_free(&q);
		if (gone) {
			if (cleanup[0])
				nftw(cleanup, pt_remove, 16, FTW_DEPTH | FTW_PHYS);
			return 0;
		}
	}
}

// daguq_proctree_supervisor turns this process into a supervisor when
// started as one by the Go side: the switch set to the protocol version, the
// socket at fd 3, and the arguments NAME CLEANUP (read from
// /proc/self/cmdline: constructors get no arguments on every C library).
__attribute__((constructor)) static void daguq_proctree_supervisor(void) {
	const char *v = getenv(PT_SWITCH);
	if (!v)
		return;
	int stat_only = strcmp(v, PT_PROTOCOL_STAT) == 0;
	int ours = stat_only || strcmp(v, PT_PROTOCOL) == 0;
	unsetenv(PT_SWITCH); // never passed on, to the handler or anyone
	struct stat st;
	if (!ours || fstat(PT_CTL, &st) != 0 || !S_ISSOCK(st.st_mode))
		return; // not started by the Go side: go on as the program
	// From here on this process is a supervisor and never runs the program.
	size_t len = 0;
	char *cmdline = pt_readall("/proc/self/cmdline", &len);
	int argc = 0;
	for (size_t i = 0; cmdline && i < len; i++)
		argc += cmdline[i] == 0;
	if (argc < 2) {
		pt_say("errno %d exec\n", cmdline ? EINVAL : ENOMEM);
		_exit(2);
	}
	const char *cleanup = cmdline + strlen(cmdline) + 1;
	if (cleanup[0] != '/')
		cleanup = ""; // absolute, or none
	_exit(pt_supervise(cleanup, stat_only));
}
