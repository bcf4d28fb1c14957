/* bunsui's native job shim: what jobshim.run_job does for one job, without a Python parent.
 *
 *   bunsui-jobshim-KEY --status-fd N --cwd DIR [--cgroup DIR] -- ARGV...
 *
 * The runner starts it with posix_spawn (setsid, stdin /dev/null, stdout and stderr the job's
 * logs, the job's environment). It makes itself a child subreaper, so whatever the command
 * starts stays its descendant after setsid or a double fork; joins the job cgroup so the
 * command is born in it; starts ARGV with posix_spawnp on the job's PATH (SIGTERM, SIGPIPE,
 * SIGXFSZ at default); waits for it, then kills and reaps every remaining descendant. SIGTERM
 * (the runner's cancel) kills every descendant. It reports on fd N the JSON line the runner
 * reads: {"pid", "wait_status", "maxrss_kb", "shim_rss_kb"}, or {"spawn_error"} and exit 127.
 * Built by native_shim.py with the system cc; its name is job_identity's mark of a job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPAWN_FAILED_EXIT 127
#define KILL_ROUNDS 50 /* sweeps of SIGKILL; each catches processes forked during the last */
#define KILL_DEADLINE_NS 2000000000LL
#define MAX_PIDS 32768
#ifndef PROC_TEXT_BYTES
#define PROC_TEXT_BYTES 65536 /* one read of a /proc file (a test builds it smaller) */
#endif

extern char **environ;

/* The walk below runs in the SIGTERM handler too: only async-signal-safe calls (open, read,
 * getdents64, kill, clock_gettime; numbers parsed here, not by strtol), static buffers, no
 * malloc or stdio. The main loop blocks SIGTERM while it walks, so the two never share
 * these buffers at once. */
static pid_t found[MAX_PIDS];
static int nfound;
static char text[PROC_TEXT_BYTES];
static char names[16384];
static int has_children_files;
static volatile sig_atomic_t terminated;

/* The decimal number `s` starts with; -1 when it starts with no digit or is past INT_MAX. */
static long parse_number(const char *s) {
    long n = -1;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((n = (n < 0 ? 0 : n * 10) + (*s - '0')) > 0x7fffffff) return -1;
    return n;
}

static char *put_str(char *at, const char *s) {
    while (*s) *at++ = *s++;
    *at = 0;
    return at;
}

static char *put_num(char *at, long n) {
    char digits[24];
    int i = 0;
    do digits[i++] = (char)('0' + n % 10); while ((n /= 10) > 0);
    while (i) *at++ = digits[--i];
    *at = 0;
    return at;
}

/* The file at `path` into `text` (NUL-terminated); its length, or -1. */
static ssize_t read_text(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t total = 0;
    ssize_t n;
    while (total < sizeof text - 1 && (n = read(fd, text + total, sizeof text - 1 - total)) > 0)
        total += (size_t)n;
    close(fd);
    text[total] = 0;
    return (ssize_t)total;
}

/* State and parent of a process from /proc/PID/stat (the name may hold ')'); 0 once gone. */
static char read_stat(pid_t pid, pid_t *ppid) {
    char path[64];
    put_str(put_num(put_str(path, "/proc/"), pid), "/stat");
    if (read_text(path) < 0) return 0;
    char *close_paren = strrchr(text, ')');
    if (close_paren == NULL || close_paren[1] != ' ' || close_paren[2] == 0 || close_paren[3] != ' ')
        return 0;
    if (ppid != NULL) *ppid = (pid_t)parse_number(close_paren + 4);
    return close_paren[2];
}

static int seen(pid_t pid) {
    for (int i = 0; i < nfound; i++)
        if (found[i] == pid) return 1;
    return 0;
}

static void add(pid_t pid) {
    if (nfound < MAX_PIDS && !seen(pid)) found[nfound++] = pid;
}

/* visit(number, pid) for each numeric entry of a /proc directory (tasks or processes). */
static void each_number(const char *directory, void (*visit)(long, pid_t), pid_t pid) {
    int dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    long n;
    while ((n = syscall(SYS_getdents64, dir, names, sizeof names)) > 0) {
        for (long at = 0; at < n;) {
            unsigned short reclen = *(unsigned short *)(names + at + 16);
            const char *name = names + at + 19;
            at += reclen;
            long number = parse_number(name);
            if (number >= 0) visit(number, pid);
        }
    }
    close(dir);
}

/* The children one task of `pid` started, from /proc/PID/task/TID/children, read whole
 * however long: a pid cut at the end of one read continues in the next (cut short, it
 * would name another process, one this shim would then kill). */
static void add_task_children(long task, pid_t pid) {
    char path[96];
    put_str(put_num(put_str(put_num(put_str(path, "/proc/"), pid), "/task/"), task), "/children");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    long child = 0;
    int digits = 0;
    ssize_t n;
    while ((n = read(fd, text, sizeof text)) > 0) {
        for (ssize_t at = 0; at < n; at++) {
            if (text[at] >= '0' && text[at] <= '9') {
                child = child * 10 + (text[at] - '0');
                digits++;
            } else {
                if (digits) add((pid_t)child);
                child = 0;
                digits = 0;
            }
        }
    }
    if (n == 0 && digits) add((pid_t)child); /* the end of the file, not a failed read */
    close(fd);
}

/* For kernels without the children files: every process's parent, from one scan of /proc
 * per walk (a scan per process of the tree made a walk cost its size times the host's). */
static pid_t scanned[MAX_PIDS], scanned_parent[MAX_PIDS];
static int nscanned;

static void note_parent(long candidate, pid_t unused) {
    (void)unused;
    pid_t ppid = 0;
    if (nscanned < MAX_PIDS && read_stat((pid_t)candidate, &ppid)) {
        scanned[nscanned] = (pid_t)candidate;
        scanned_parent[nscanned++] = ppid;
    }
}

/* Every descendant of this process, nearest first, into `found`. */
static void collect_descendants(void) {
    nfound = 0;
    nscanned = 0;
    if (!has_children_files) each_number("/proc", note_parent, 0);
    pid_t self = getpid();
    for (int i = -1; i < nfound; i++) {
        pid_t parent = i < 0 ? self : found[i];
        if (has_children_files) {
            char tasks[64];
            put_str(put_num(put_str(tasks, "/proc/"), parent), "/task");
            each_number(tasks, add_task_children, parent);
        } else {
            for (int j = 0; j < nscanned; j++)
                if (scanned_parent[j] == parent) add(scanned[j]);
        }
    }
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SIGKILL every descendant until none is left alive (zombies are dead already). */
static void kill_descendants(void) {
    long long end = now_ns() + KILL_DEADLINE_NS;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        collect_descendants();
        int alive = 0;
        for (int i = 0; i < nfound; i++) {
            char state = read_stat(found[i], NULL);
            if (state && state != 'Z' && state != 'X') {
                kill(found[i], SIGKILL);
                alive++;
            }
        }
        if (!alive || now_ns() > end) return;
    }
}

static void on_sigterm(int signum) {
    (void)signum;
    int saved = errno;
    terminated = 1;
    kill_descendants();
    errno = saved;
}

static void kill_descendants_now(void) {
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    kill_descendants();
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The shim's resident memory now, from /proc/self/statm (its second field, in pages). Not
 * getrusage's ru_maxrss: exec keeps the peak of the image it replaced, and the runner
 * starts the shim with posix_spawn (vfork), so that is the runner's own peak. Read into a
 * buffer of its own: a SIGTERM now runs the walk over `text`. */
static long own_rss_kb(void) {
    char statm[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, statm, sizeof statm - 1);
    close(fd);
    if (n <= 0) return 0;
    statm[n] = 0;
    char *resident = strchr(statm, ' ');
    long pages = resident ? parse_number(resident + 1) : -1;
    return pages > 0 ? pages * (sysconf(_SC_PAGESIZE) / 1024) : 0;
}

/* One write of a whole line; a full or closed pipe loses it (never blocks the shim). */
static void report(int fd, const char *line, size_t length) {
    ssize_t written;
    do written = write(fd, line, length); while (written < 0 && errno == EINTR);
}

/* How many bytes at `s` form one well-formed UTF-8 character (as a strict decoder such as
 * the runner's json reads it: no overlong form, no surrogate); 0 when they do not. */
static int utf8_length(const unsigned char *s) {
    int length = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    unsigned char low = 0x80, high = 0xbf; /* the second byte's range */
    if (s[0] < 0xc2 || s[0] > 0xf4) return 0;
    if (s[0] == 0xe0) low = 0xa0;
    if (s[0] == 0xed) high = 0x9f;
    if (s[0] == 0xf0) low = 0x90;
    if (s[0] == 0xf4) high = 0x8f;
    if (s[1] < low || s[1] > high) return 0;
    for (int i = 2; i < length; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return length;
}

/* {"spawn_error": "WHAT: REASON"} on a line of its own, as JSON: UTF-8 kept as it is (the
 * command's name reads as the pipeline wrote it), a byte that is not UTF-8 as U+FFFD. */
static int spawn_failed(int status_fd, const char *what, int error) {
    static char line[8192];
    const char *reason = strerror(error);
    size_t at = 0;
    at += (size_t)snprintf(line, sizeof line, "\n{\"spawn_error\": \"");
    for (int part = 0; part < 3; part++) {
        const unsigned char *s = (const unsigned char *)(part == 0 ? what : part == 1 ? ": " : reason);
        while (*s && at < sizeof line - 16) {
            int length = *s >= 0x80 ? utf8_length(s) : 1;
            if (*s == '"' || *s == '\\')
                at += (size_t)snprintf(line + at, sizeof line - at, "\\%c", *s);
            else if (*s < 0x20 || *s == 0x7f)
                at += (size_t)snprintf(line + at, sizeof line - at, "\\u%04x", *s);
            else if (length == 0)
                at += (size_t)snprintf(line + at, sizeof line - at, "\\ufffd");
            else
                for (int i = 0; i < length; i++) line[at++] = (char)s[i];
            s += length ? length : 1;
        }
    }
    at += (size_t)snprintf(line + at, sizeof line - at, "\"}\n");
    report(status_fd, line, at);
    return SPAWN_FAILED_EXIT;
}

static int join_cgroup(const char *cgroup) {
    char path[4096], pid[24];
    if (snprintf(path, sizeof path, "%s/cgroup.procs", cgroup) >= (int)sizeof path) return ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int length = snprintf(pid, sizeof pid, "%d", (int)getpid());
    int error = write(fd, pid, (size_t)length) == length ? 0 : errno;
    close(fd);
    return error;
}

/* Every descriptor but stdio and the status pipe: whatever the runner left inheritable is
 * neither the shim's nor the job's (as subprocess's close_fds, which the Python shim had). */
static void close_inherited(int status_fd) {
    int first = status_fd == 3 ? 4 : 3;
#ifdef SYS_close_range
    if (first == 4 && syscall(SYS_close_range, 4, ~0U, 0) == 0) return;
#endif
    long last = sysconf(_SC_OPEN_MAX);
    if (last < 0 || last > 65536) last = 65536;
    for (int fd = first; fd < last; fd++)
        if (fd != status_fd) close(fd);
}

static pid_t start(char **command, int *error) {
    posix_spawnattr_t attr;
    sigset_t defaults, none;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    /* posix_spawnp searches this process's PATH: the runner gave it the job's environment. */
    *error = posix_spawnp(&pid, command[0], NULL, &attr, command, environ);
    posix_spawnattr_destroy(&attr);
    return *error ? -1 : pid;
}

int main(int argc, char **argv) {
    int status_fd = -1, i = 1;
    const char *cgroup = NULL, *cwd = NULL;
    for (; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (strcmp(argv[i], "--status-fd") == 0)
            status_fd = (int)parse_number(argv[i + 1]); /* not a number: -1, the usage */
        else if (strcmp(argv[i], "--cgroup") == 0)
            cgroup = argv[i + 1];
        else if (strcmp(argv[i], "--cwd") == 0)
            cwd = argv[i + 1];
        else
            break;
    }
    if (status_fd < 3 || i + 1 >= argc || strcmp(argv[i], "--") != 0) { /* 0-2: the job's */
        fprintf(stderr, "usage: %s --status-fd N [--cwd DIR] [--cgroup DIR] -- ARGV...\n", argv[0]);
        return 2;
    }
    char **command = argv + i + 1;
    close_inherited(status_fd);
    /* The command never inherits the status pipe; a pipe the job filled never blocks us. */
    fcntl(status_fd, F_SETFD, FD_CLOEXEC);
    fcntl(status_fd, F_SETFL, fcntl(status_fd, F_GETFL) | O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction term = {0};
    term.sa_handler = on_sigterm;
    sigemptyset(&term.sa_mask);
    sigaction(SIGTERM, &term, NULL);
    char self_children[64];
    snprintf(self_children, sizeof self_children, "/proc/self/task/%d/children", (int)getpid());
#ifdef WITHOUT_CHILDREN_FILES /* a test builds the shim of a kernel without them */
    has_children_files = 0;
#else
    has_children_files = access(self_children, R_OK) == 0;
#endif
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    prctl(PR_SET_NAME, "bunsui-jobshim", 0, 0, 0); /* run from a memfd, it would be "11" */
    long shim_rss_kb = own_rss_kb();

    if (cwd != NULL && chdir(cwd) != 0) return spawn_failed(status_fd, cwd, errno);
    int error = cgroup != NULL ? join_cgroup(cgroup) : 0;
    if (error) return spawn_failed(status_fd, cgroup, error);
    pid_t root = start(command, &error);
    if (root < 0) return spawn_failed(status_fd, command[0], error);
    if (terminated) kill_descendants_now(); /* cancelled while the command was starting */

    int root_status = 0, root_done = 0;
    long root_maxrss = 0;
    for (;;) {
        int status;
        struct rusage usage;
        /* Once the command is reaped, every process that has ended is reaped before the tree
         * is walked and swept again: one sweep kills all, then the reaping needs no walk
         * (a walk per reaped process made hundreds of them cost seconds). */
        pid_t pid = wait4(-1, &status, root_done ? WNOHANG : 0, &usage);
        if (pid == 0) { /* children left, none ended since the last sweep */
            kill_descendants_now();
            pid = wait4(-1, &status, 0, &usage);
        }
        if (pid < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: the command and every descendant are reaped (orphans come back) */
        }
        if (pid == root) root_status = status, root_maxrss = usage.ru_maxrss, root_done = 1;
    }
    /* On a line of its own: whatever a job wrote on this pipe cannot tear it. */
    char line[160];
    int length = snprintf(line, sizeof line,
                          "\n{\"pid\": %d, \"wait_status\": %d, \"maxrss_kb\": %ld, \"shim_rss_kb\": %ld}\n",
                          (int)root, root_status, root_maxrss, shim_rss_kb);
    report(status_fd, line, (size_t)length);
    return 0;
}
