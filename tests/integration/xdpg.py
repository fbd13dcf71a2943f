"""A private PostgreSQL cluster for tests and benchmarks.

The first call to cluster() runs initdb into a temporary folder and starts
`postgres` on its own loopback port (no Unix socket, trust authentication for
the test user); it is stopped by its pid, and the folder removed, when the
Python process exits. Each Hub gets a database of its own (new_database()).

PostgreSQL refuses to run as root: as root the server runs as the `postgres`
system user (created by the Debian package), or `nobody` when that is absent.
Binaries come from $XD_PG_BIN, else the newest /usr/lib/postgresql/*/bin.

Standard library only. Also a command-line tool for bench/pg.sh:
    python3 xdpg.py start DIR   prints the URL of a new database; runs until stop
    python3 xdpg.py stop DIR
    python3 xdpg.py run CMD...  runs CMD with XD_TEST_PG_URL set to a new database
"""
import atexit
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

USER = "xdtest"  # the cluster's superuser (a role, not a system account)
_cluster = None
_dbs = itertools.count(1)


def bindir():
    env = os.environ.get("XD_PG_BIN")
    if env:
        return env if os.path.exists(os.path.join(env, "postgres")) else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def available():
    """None when PostgreSQL can be used here, else why not."""
    if not bindir():
        return "PostgreSQL server binaries not found (apt-get install postgresql-15)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as():
    """The (uid, gid) to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


class Cluster:
    """One initdb'd data folder and the postgres server running on it."""

    def __init__(self, root=None, fsync=False):
        b = bindir()
        if not b:
            raise unittest.SkipTest(available())
        self.bin = b
        self.root = root or tempfile.mkdtemp(prefix="xd-pg-")
        os.makedirs(self.root, exist_ok=True)
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.proc = None
        ids = _run_as()
        os.chmod(self.root, 0o755)
        os.makedirs(self.data, mode=0o700, exist_ok=True)
        if ids:
            os.chown(self.data, *ids)
        self.log_path = os.path.join(self.root, "postgres.log")
        self.kw = {}
        if ids:
            self.kw = {"user": ids[0], "group": ids[1], "extra_groups": []}
        self.fsync = fsync
        subprocess.run([os.path.join(b, "initdb"), "-D", self.data, "-U", USER, "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, cwd="/", **self.kw)
        with open(self.log_path, "ab"):
            pass
        if ids:
            os.chown(self.log_path, *ids)
        self.start_server()

    def start_server(self):
        """Starts postgres on the data folder and port (again, after stop_server)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", f"fsync={'on' if self.fsync else 'off'}",
                 "-c", "max_connections=200", "-c", "shared_buffers=64MB",
                 "-c", "deadlock_timeout=200ms",
                 # XD_PG_SETTINGS="log_min_duration_statement=5 ...": more settings, for digging
                 *[a for kv in os.environ.get("XD_PG_SETTINGS", "").split() for a in ("-c", kv)]],
                stdout=log, stderr=subprocess.STDOUT, cwd="/", **self.kw)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited at start:\n" + self.read_log())
            if self.psql("SELECT 1", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("postgres did not start:\n" + self.read_log())
            time.sleep(0.1)

    def stop_server(self, sig=signal.SIGINT):
        """Stops the server by its pid (SIGINT: fast shutdown, SIGKILL: a crash); keeps the data."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def url(self, db):
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres", check=True):
        return subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-t", "-A",
                               "-v", "ON_ERROR_STOP=1", "-d", self.url(db), "-c", sql],
                              capture_output=True, text=True, check=check, timeout=120)

    def query(self, db, sql):
        """Rows of a query as lists of strings ('|' separated by psql)."""
        out = self.psql(sql, db=db).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def new_database(self, prefix="xd"):
        name = f"{prefix}_{os.getpid()}_{next(_dbs)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def stop(self):
        """Stops the server by its pid (fast shutdown) and removes the folder."""
        self.stop_server()
        if os.environ.get("XD_PG_KEEP"):
            print(f"xdpg: kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def cluster():
    """The process's cluster, started on first use and stopped at exit."""
    global _cluster
    if _cluster is None:
        _cluster = Cluster()
        atexit.register(_cluster.stop)
    return _cluster


def wanted():
    """True when the tests are to run on PostgreSQL (XD_STORE_DRIVER=postgres)."""
    return os.environ.get("XD_STORE_DRIVER", "sqlite") == "postgres"


def skip_on_postgres(reason):
    """Decorator: skips a test (or class) in the PostgreSQL run, saying why."""
    return unittest.skipIf(wanted(), f"PostgreSQL run: {reason}")


def main(argv):
    """bench/pg.sh: `start DIR [--fsync]` prints a database URL; `stop DIR` stops it.
    ctest: `run CMD...` runs CMD with XD_TEST_PG_URL set to a new database."""
    if len(argv) >= 3 and argv[1] == "run":
        c = cluster()
        env = dict(os.environ, XD_TEST_PG_URL=c.url(c.new_database("unit")))
        return subprocess.run(argv[2:], env=env).returncode
    if len(argv) >= 3 and argv[1] == "start":
        root = argv[2]
        os.makedirs(root, exist_ok=True)
        pid = os.fork()
        if pid == 0:
            # The child owns the server; it waits for `stop` (SIGTERM) and then stops it.
            # Its output goes to a file: a caller reading ours must not wait for it.
            fd = os.open(os.path.join(root, "keeper.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.setsid()
            c = Cluster(root=os.path.join(root, "cluster"), fsync="--fsync" in argv)
            db = c.new_database("bench")
            with open(os.path.join(root, "url.tmp"), "w") as f:
                f.write(c.url(db) + "\n")
            os.rename(os.path.join(root, "url.tmp"), os.path.join(root, "url"))
            signal.signal(signal.SIGTERM, lambda *_: (c.stop(), os._exit(0)))
            while True:
                signal.pause()
        with open(os.path.join(root, "keeper.pid"), "w") as f:
            f.write(str(pid))
        path = os.path.join(root, "url")
        deadline = time.monotonic() + 120
        while not os.path.exists(path):
            if time.monotonic() > deadline or os.waitpid(pid, os.WNOHANG)[0]:
                print("xdpg: the cluster did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        with open(path) as f:
            print(f.read().strip())
        return 0
    if len(argv) >= 3 and argv[1] == "stop":
        with open(os.path.join(argv[2], "keeper.pid")) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return 0
            time.sleep(0.1)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
