"""A dbt starter: a process that has imported dbt once and forks a dbt run per request.

Importing dbt costs about 3 s of CPU before a dbt command does anything (`python -X
importtime`: dbt.cli.main and dbt_common). A nightly build pays it a few times; a test
run pays it hundreds of times. With ``warehouse.dbt_starter`` set to the socket of a
running starter (``python -m servicepulse.dbt_starter SOCKET``), `run_dbt` asks it for a
run instead of starting the `dbt` program: the starter forks, and the copy runs dbt's
command line (the same ``cli`` the program calls) with the caller's arguments,
environment, folder, stdout and stderr (passed as file descriptors).

The copy keeps the guarantees of processes.run_child:

- it leads a process group of its own, which the caller ends (SIGTERM, then SIGKILL)
  whatever way the call is left, and to which SIGTERM and SIGINT to the caller are passed;
- it dies with the caller even when the caller is killed outright: it holds the caller's
  end of the request socket and kills its group when that closes.

The starter never runs dbt itself: each request gets a fresh copy of the process as it was
after the imports, so no run sees another's state.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from servicepulse.processes import GRACE_SECONDS, forwarding_signals

REQUEST_BYTES = 1 << 20  # arguments and environment; a socket message holds them whole


class StarterUnavailable(OSError):
    """No dbt starter took the request: nothing of it ran, the caller may run dbt
    otherwise."""


def run_forked(starter: Path, argv: list[str], env: dict[str, str], cwd: Path | str,
               timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run dbt's command line ``argv`` (argv[0] the dbt program, the rest its arguments)
    in a copy of the starter listening at ``starter``; as processes.run_child (text
    output, check=False). StarterUnavailable when no starter took the request."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(str(starter))
        request = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}).encode()
        socket.send_fds(connection, [request], [out_write, err_write])
    except BaseException as exc:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        connection.close()
        if isinstance(exc, OSError):
            raise StarterUnavailable(f"the dbt starter at {starter}: {exc}") from exc
        raise
    os.close(out_write)
    os.close(err_write)
    outputs: dict[int, bytes] = {}

    def drain(fd: int) -> None:  # until every holder of the write end has closed it
        with open(fd, "rb") as pipe:
            outputs[fd] = pipe.read()

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True)
               for fd in (out_read, err_read)]
    for reader in readers:
        reader.start()
    group = 0
    try:
        try:
            reply = connection.recv(64)
        except OSError:
            reply = b""
        if not reply:  # the copy never started, or died before it began
            raise StarterUnavailable(f"the dbt starter at {starter} closed the request "
                                     "unanswered")
        group = int(json.loads(reply)["pid"])
        with forwarding_signals(group):
            deadline = None if timeout is None else time.monotonic() + timeout
            for reader in readers:
                reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if reader.is_alive():
                    raise subprocess.TimeoutExpired(argv, timeout or 0)
            try:
                ended = connection.recv(64)
            except OSError:  # as an empty answer: the copy ended without its exit code
                ended = b""
    finally:
        if group:
            _end_group(group, connection)
        connection.close()
    # Without an exit code the copy was killed; by which signal its caller cannot see.
    returncode = int(json.loads(ended)["exit"]) if ended else -signal.SIGKILL
    return subprocess.CompletedProcess(
        argv, returncode, outputs.get(out_read, b"").decode(errors="replace"),
        outputs.get(err_read, b"").decode(errors="replace"))


def _end_group(group: int, connection: socket.socket) -> None:
    """SIGTERM, then SIGKILL after a grace period, to the copy's group; it has ended when
    its end of the connection closes."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            return  # the group is gone
        connection.settimeout(GRACE_SECONDS)
        with contextlib.suppress(OSError):
            while connection.recv(64):
                pass
            return


def serve(address: Path) -> None:
    """Import dbt's command line, then fork a copy per request on ``address`` until
    killed."""
    import dbt.cli.main  # noqa: F401 (the import each run is spared)

    # A fork copies one thread: a lock another thread held would stay held in the copy.
    # dbt's command line starts none on import; the adapters are left to each copy because
    # importing duckdb does (0.07 s).
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SystemExit(f"the dbt starter runs {threads} threads after importing dbt: "
                         "forking it would not be safe")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the copies
    with contextlib.suppress(FileNotFoundError):
        os.unlink(address)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(address))
    listener.listen(64)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            code = 70
            try:
                listener.close()
                code = _run_request(connection)
            finally:
                # Out of the loop and through the interpreter's own exit, as the program
                # ends: atexit handlers and finalizers run (dbt's semaphores are released;
                # skipped, multiprocessing's tracker would warn of them on stderr).
                sys.exit(code)
        connection.close()


def _run_request(connection: socket.socket) -> int:
    """In the copy: take the request, become a process group bound to the caller, run
    dbt's command line, answer its exit code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # dbt's own children are waited for
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    message, fds, _, _ = socket.recv_fds(connection, REQUEST_BYTES, 2)
    if len(fds) != 2 or not message:
        return 70
    request = json.loads(message)
    # Before answering: a folder that is not there leaves the request unanswered, and the
    # caller's fallback, the program, says so as it would have.
    os.chdir(request["cwd"])
    os.setpgid(0, 0)
    null = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((null, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(source, target)
        os.close(source)
    connection.send(json.dumps({"pid": os.getpid()}).encode())

    def die_with_the_caller() -> None:
        with contextlib.suppress(OSError):
            while connection.recv(64):
                pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=die_with_the_caller, daemon=True).start()
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    from dbt.cli.main import cli

    try:
        cli.main(args=sys.argv[1:], prog_name=Path(sys.argv[0]).name)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except Exception:  # noqa: BLE001 (as the program would: the traceback, exit 1)
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    connection.send(json.dumps({"exit": code}).encode())
    return code


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m servicepulse.dbt_starter SOCKET")
    serve(Path(sys.argv[1]))
