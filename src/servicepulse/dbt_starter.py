"""A dbt starter: a process that has imported dbt once and forks a dbt run per request.

Importing dbt costs about 3 s of CPU before a dbt command does anything (`python -X
importtime`: dbt.cli.main and dbt_common). A nightly build pays it a few times; a test
run pays it hundreds of times. With ``warehouse.dbt_starter`` set to the socket of a
running starter (``python -m servicepulse.dbt_starter SOCKET``), `run_dbt` asks it for a
run instead of starting the `dbt` program.

Per request the starter forks a *supervisor*, and the supervisor forks the *copy* that
runs dbt's command line (the same ``cli`` the program calls) with the caller's
arguments, environment, folder, stdout and stderr (passed as file descriptors). The copy
keeps the guarantees of processes.run_child:

- it leads a process group of its own, to which SIGTERM and SIGINT to the caller are
  passed, and which is ended (SIGTERM, then SIGKILL) whatever way the call is left;
- it dies with the caller even when the caller is killed outright: the supervisor holds
  the caller's end of the request socket and ends the group when that closes;
- what it leaves behind in its group is killed when it exits, and its exit status is
  answered as it was (a code, or the signal that ended it).

Why a supervisor: only a parent can keep a finished copy as a zombie, and a zombie keeps
its process and group id from being given to another process. The supervisor reaps the
copy only after the caller has its answer, so a signal the caller sends the group never
reaches a stranger.

The starter never runs dbt itself: each request gets a fresh copy of the process as it was
after the imports, so no run sees another's state.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from servicepulse.processes import GRACE_SECONDS, die_with_parent, forwarding_signals

REQUEST_BYTES = 1 << 20  # arguments and environment; a socket message holds them whole
# A supervisor answers as soon as it has forked (milliseconds); a starter silent this long
# is stuck, and the caller runs dbt otherwise.
ANSWER_SECONDS = 30


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
        connection.settimeout(ANSWER_SECONDS)
        reply = connection.recv(64)
        if not reply:
            raise ConnectionResetError("the request was closed unanswered")
        group = int(json.loads(reply)["pid"])
    except BaseException as exc:
        # Closing the connection also stops a copy a late supervisor may yet start.
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
    answer = b""
    try:
        # Signals to the group only while the connection is open and unanswered: until
        # then the supervisor has not reaped the copy, so the group's id is still its.
        with forwarding_signals(group):
            connection.settimeout(timeout)
            try:
                answer = connection.recv(64)
            except TimeoutError:
                raise subprocess.TimeoutExpired(argv, timeout or 0) from None
            except OSError:  # as an empty answer: the supervisor died
                answer = b""
    finally:
        if not answer:  # left early: the supervisor ends the group, then answers
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_WR)
                connection.settimeout(2 * GRACE_SECONDS + 5)
                connection.recv(64)
        connection.close()
        # The supervisor killed what was left of the group, so the pipes are closed.
        for reader in readers:
            reader.join(GRACE_SECONDS)
    status = json.loads(answer) if answer else {"signal": int(signal.SIGKILL)}
    returncode = int(status["exit"]) if "exit" in status else -int(status["signal"])
    return subprocess.CompletedProcess(
        argv, returncode, outputs.get(out_read, b"").decode(errors="replace"),
        outputs.get(err_read, b"").decode(errors="replace"))


def run_dbt_cli(argv: list[str]) -> None:
    """dbt's command line, as the `dbt` program runs it (it ends by SystemExit)."""
    from dbt.cli.main import cli

    cli.main(args=argv[1:], prog_name=Path(argv[0]).name)


def serve(address: Path, run: Callable[[list[str]], None] | None = None) -> None:
    """Import dbt's command line, then serve requests on ``address`` until killed: each
    is run by ``run`` (dbt's command line by default) in a copy forked for it. In the
    starter this never returns; in a copy it returns when ``run`` does (exit 0)."""
    if run is None:
        import dbt.cli.main  # noqa: F401 (the import each run is spared)

        run = run_dbt_cli
    # A fork copies one thread: a lock another thread held would stay held in the copy.
    # dbt's command line starts none on import; the adapters are left to each copy because
    # importing duckdb does (0.07 s).
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SystemExit(f"the dbt starter runs {threads} threads after importing dbt: "
                         "forking it would not be safe")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the supervisors
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
            listener.close()
            argv = _supervise(connection)  # returns in the copy only
            break
        connection.close()
    # The copy: out of the starter's loop, so that dbt ends as the program does, through
    # the interpreter's own exit (SystemExit's code or message, a traceback, atexit
    # handlers and finalizers: dbt's semaphores are released, else multiprocessing's
    # tracker warns of them on stderr).
    run(argv)


def _supervise(connection: socket.socket) -> list[str]:
    """In the supervisor: take the request, fork the copy, answer its group, watch it and
    the caller, answer its exit status. Returns, in the copy only, the argv to run."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the copy is ours to wait for
        message, fds, _, _ = socket.recv_fds(connection, REQUEST_BYTES, 2)
        if len(fds) != 2 or not message:
            os._exit(70)
        request = json.loads(message)
        # Before answering: a folder that is not there leaves the request unanswered, and
        # the caller's fallback, the program, says so as it would have.
        os.chdir(request["cwd"])
        supervisor = os.getpid()
        copy = os.fork()
        if copy == 0:
            connection.close()
            _become_the_copy(request, fds, supervisor)
            return list(request["argv"])
        with contextlib.suppress(OSError):  # as the copy does, so the group exists now
            os.setpgid(copy, copy)
        for fd in fds:
            os.close(fd)
        connection.send(json.dumps({"pid": copy}).encode())
        _watch(connection, copy)
    except BaseException:  # noqa: BLE001 (a supervisor never unwinds into the starter)
        with contextlib.suppress(Exception):
            traceback.print_exc()
        os._exit(70)
    os._exit(0)


def _become_the_copy(request: dict, fds: list[int], supervisor: int) -> None:
    os.setpgid(0, 0)
    die_with_parent(supervisor)()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # dbt's KeyboardInterrupt
    null = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((null, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(source, target)
        os.close(source)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])


def _watch(connection: socket.socket, copy: int) -> None:
    """Until the copy exits, or the caller leaves (its end of the connection closes):
    then end the copy's group, answer the copy's exit status, reap it once the caller
    has the answer."""
    ended = os.pidfd_open(copy)
    ready, _, _ = select.select([connection, ended], [], [])
    if ended not in ready:  # the caller is gone, or stopped waiting
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(copy, sig)
            if select.select([ended], [], [], GRACE_SECONDS)[0]:
                break
    exited = os.waitid(os.P_PID, copy, os.WEXITED | os.WNOWAIT)  # still a zombie
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(copy, signal.SIGKILL)  # what it left running in its group
    status = ({"exit": exited.si_status} if exited.si_code == os.CLD_EXITED
              else {"signal": exited.si_status})
    with contextlib.suppress(OSError):
        connection.send(json.dumps(status).encode())
        while connection.recv(64):  # the caller closes once it has the answer
            pass
    os.waitpid(copy, 0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m servicepulse.dbt_starter SOCKET")
    serve(Path(sys.argv[1]))
