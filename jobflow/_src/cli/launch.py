"""``jobflow launch``: start a multi-process run of a script on this machine.

    jobflow launch -n 2 train.py --epochs 3
    python -m jobflow.launch -n 2 --cpu-devices 4 train.py

Starts ``n`` copies of ``python script.py args...``, each with the environment that
:func:`jobflow.env.init` reads (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``; the coordinator listens on a free loopback port, which the launcher
holds for the whole run so that nothing else can take it). Every line a process prints
is prefixed with ``[rank]``, on stdout or stderr as the process printed it; the
runtime's noise (gloo's connection reports, absl INFO/WARNING lines) is hidden unless
``--verbose``.

When a process's script raises or exits with a non-zero code, that process ends at
once with its code (1 for an exception, after its traceback) instead of waiting in
JAX's shutdown barrier for the others; the launcher then names the rank on stderr
(``jobflow launch: rank 1 exited with code 3; stopping the other ranks``), stops the
others (SIGTERM, then SIGKILL after ``--grace`` 5 seconds) and exits with that code, within
seconds. ``--timeout`` stops everything after that many seconds (exit 124); Ctrl-C
(130) and SIGTERM (143) stop everything too. On Linux the processes also die with the
launcher if it is killed outright.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = [
    "reserve_port",
    "child_environment",
    "is_noise",
    "worker_command",
    "WORKER",
    "launch",
    "add_arguments",
    "run",
    "main",
]


def reserve_port(host: str = "127.0.0.1") -> tuple[socket.socket, int]:
    """A free TCP port on ``host`` (the kernel picks it), held until the socket is closed.

    The socket is bound with ``SO_REUSEPORT`` and never listens: no other program can take
    the port meanwhile, while the coordinator (gRPC binds with ``SO_REUSEPORT`` too) can
    bind and listen on it. Without ``SO_REUSEPORT`` (not Linux/BSD) the port is only free
    at the time of the call.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock, sock.getsockname()[1]


def child_environment(base: dict, rank: int, nprocs: int, port: int, cpu_devices: int | None) -> dict:
    """The environment of process ``rank``: ``base`` plus the multi-process settings.

    ``cpu_devices`` sets ``JAX_NUM_CPU_DEVICES`` (and drops a forced host device count from
    ``XLA_FLAGS``, which would otherwise compete with it).
    """
    env = dict(base)
    address = f"127.0.0.1:{port}"
    env.update(
        JAX_COORDINATOR_ADDRESS=address,
        JAX_COORDINATOR_BIND_ADDRESS=address,
        JAX_NUM_PROCESSES=str(nprocs),
        JAX_PROCESS_ID=str(rank),
        PYTHONUNBUFFERED="1",
    )
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # JAX_* win; do not leave a second, different description behind
    if cpu_devices is not None:
        env["JAX_NUM_CPU_DEVICES"] = str(cpu_devices)
        flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
        if flags:
            env["XLA_FLAGS"] = flags
        else:
            env.pop("XLA_FLAGS", None)
    return env


# Lines the runtime prints that say nothing to the user of a healthy run: gloo's
# connection reports (on stdout), the C++ runtime's absl INFO/WARNING lines (the
# preemption notifier's "SIGTERM caught" during a teardown) and absl's notice about
# logging before its initialization. ERROR and FATAL lines, and Python's own absl
# logging (``train.py:10]``), are kept. gloo's threads write their reports piece by piece
# at once, so a line may hold pieces of two of them ("[Gloo] Rank [Gloo] Rank 2 is
# connected to 3 peer ranks. ...", then "3 is connected to ..."): a line made only of
# those pieces and numbers, with at least one of the pieces, is noise too.
_GLOO_PIECES = r"(?:\[Gloo\] Rank|is connected to|peer ranks\.?|Expected number of connected peer ranks is :)"
_NOISE = re.compile(
    rf"\s*(?:\d+\b\s*)*{_GLOO_PIECES}(?:\s*(?:{_GLOO_PIECES}|\d+\b))*\s*$"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+\.(?:cc|cpp|h):\d+\] "
)


def is_noise(line: str) -> bool:
    """Whether a worker's output line is runtime noise that ``jobflow launch`` hides by
    default (``--verbose`` shows everything)."""
    return _NOISE.match(line) is not None


def _pump(stream, prefix: str, out, quiet: bool) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        if quiet and is_noise(line):
            continue
        out.write(prefix + line)
        out.flush()
    stream.close()


# ``python -c`` program that runs a script as ``python script.py args`` would, except that
# when the script raises or exits with a non-zero code the process ends at once with that
# code (1 for an exception, after printing its traceback), skipping the interpreter's exit
# handlers: JAX's would otherwise wait in its shutdown barrier for the other processes,
# which are waiting for this one in a collective, for minutes.
WORKER = """\
import os, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.realpath(script))

def _end(code):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)

try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as e:
    if e.code is None or e.code == 0:
        raise
    if not isinstance(e.code, int):
        print(e.code, file=sys.stderr)
    _end(e.code & 0xFF if isinstance(e.code, int) else 1)
except BaseException as e:
    tb = e.__traceback__  # from the script's first frame on (not this program's, not runpy's)
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    e.__traceback__ = tb or e.__traceback__
    sys.excepthook(type(e), e, e.__traceback__)
    _end(1)
"""


def worker_command(script: str, args) -> list[str]:
    """The argv that runs ``script args...`` in one process of a launch (see :data:`WORKER`)."""
    return [sys.executable, "-c", WORKER, script, *args]


def _stop(procs, grace: float) -> None:
    """SIGTERM to every running process group, SIGKILL to those still alive after ``grace`` s."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(p, signal.SIGKILL)
            p.wait()


def _die_with_parent_hook():
    """A ``preexec_fn`` that makes a child get SIGKILL when the launcher dies, however it
    dies (Linux ``PR_SET_PDEATHSIG``); None elsewhere, where the launcher's cleanup applies."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class _Terminated(Exception):
    """The launcher got SIGTERM."""


def _raise_terminated(signum, frame):
    raise _Terminated


def _signal_group(proc, sig) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own group (start_new_session)
    except ProcessLookupError:
        pass


def _check_launch(command, nprocs, cpu_devices) -> None:
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"launch nprocs must be an int >= 1; got {nprocs!r}")
    if cpu_devices is not None and (
        isinstance(cpu_devices, bool) or not isinstance(cpu_devices, int) or cpu_devices < 1
    ):
        raise ValueError(f"launch cpu_devices must be an int >= 1 or None; got {cpu_devices!r}")
    if not command:
        raise ValueError("launch needs a command to run")


def _start(command, rank, nprocs, port, cpu_devices, hook, streams, quiet):
    """Starts process ``rank`` and the threads that copy its stdout and stderr."""
    proc = subprocess.Popen(
        command,
        env=child_environment(os.environ, rank, nprocs, port, cpu_devices),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=hook,
    )
    pumps = [
        threading.Thread(target=_pump, args=(pipe, f"[{rank}] ", dest, quiet), daemon=True)
        for pipe, dest in ((proc.stdout, streams[0]), (proc.stderr, streams[1]))
    ]
    for pump in pumps:
        pump.start()
    return proc, pumps


def launch(
    command: list[str],
    nprocs: int,
    *,
    cpu_devices: int | None = None,
    port: int | None = None,
    timeout: float | None = None,
    grace: float = 5.0,
    out=None,
    err=None,
    verbose: bool = False,
) -> int:
    """Runs ``command`` in ``nprocs`` processes; returns 0, the first failure's code, or 124.

    As soon as one process exits with a non-zero code the others are stopped (SIGTERM,
    SIGKILL after ``grace`` seconds) and a line on ``err`` names its rank.

    Args:
      command: the argv of one process, e.g. :func:`worker_command` of a script.
      nprocs: how many processes (>= 1).
      cpu_devices: CPU devices per process (``JAX_NUM_CPU_DEVICES``), or None to inherit.
      port: the coordinator's port (default: a free one, reserved for the run).
      timeout: seconds before every process is stopped (exit code 124), or None.
      grace: seconds between SIGTERM and SIGKILL when stopping processes.
      out, err: where the processes' stdout and stderr go, each line prefixed with
        ``[rank]`` (default ``sys.stdout``, ``sys.stderr``); the launcher's own messages
        go to ``err``.
      verbose: also copy the runtime's noise lines (:func:`is_noise`).
    """
    _check_launch(command, nprocs, cpu_devices)
    streams = (sys.stdout if out is None else out, sys.stderr if err is None else err)
    reservation = None
    if port is None:
        reservation, port = reserve_port()
    procs, pumps = [], []
    hook = _die_with_parent_hook()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        for rank in range(nprocs):
            proc, threads = _start(command, rank, nprocs, port, cpu_devices, hook, streams, not verbose)
            procs.append(proc)
            pumps += threads
        code = _wait(procs, timeout, streams[1])
    except KeyboardInterrupt:
        streams[1].write("jobflow launch: interrupted; stopping every process\n")
        code = 130
    except _Terminated:
        streams[1].write("jobflow launch: terminated; stopping every process\n")
        code = 143
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        _stop(procs, grace)
        for pump in pumps:
            pump.join(timeout=grace)
        if reservation is not None:
            reservation.close()
    return code


def _exit_message(rank: int, code: int, returncode: int) -> str:
    how = f" (killed by {signal.Signals(-returncode).name})" if returncode < 0 else ""
    return f"jobflow launch: rank {rank} exited with code {code}{how}; stopping the other ranks\n"


def _reap(procs) -> queue.Queue:
    """A queue that receives ``(rank, returncode)`` as each process exits, in exit order."""
    exits: queue.Queue = queue.Queue()

    def reap(rank, proc):
        exits.put((rank, proc.wait()))

    for rank, proc in enumerate(procs):
        threading.Thread(target=reap, args=(rank, proc), daemon=True).start()
    return exits


def _wait(procs, timeout, err) -> int:
    """Waits for every process; returns 0, the first non-zero exit's code, or 124."""
    deadline = None if timeout is None else time.monotonic() + timeout
    exits, ended = _reap(procs), 0
    while ended < len(procs):
        if deadline is not None and time.monotonic() > deadline:
            err.write(f"jobflow launch: timed out after {timeout:g} s; stopping every process\n")
            return 124
        try:
            rank, returncode = exits.get(timeout=0.1)
        except queue.Empty:
            continue
        ended += 1
        if returncode != 0:
            code = 128 - returncode if returncode < 0 else returncode  # signal N: the shell's 128 + N
            if any(p.poll() is None for p in procs):
                err.write(_exit_message(rank, code, returncode))
                err.flush()
            return code
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``jobflow launch``."""
    parser.add_argument("-n", "--nproc", type=int, default=2, help="number of processes (default 2)")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="CPU devices per process (JAX_NUM_CPU_DEVICES); default: inherit",
    )
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="stop every process after this many seconds"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when stopping the processes (default 5)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the runtime's noise lines (gloo connections, absl INFO/WARNING logs)",
    )
    parser.add_argument("script", help="the Python script every process runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")


def run(args) -> int:
    """``jobflow launch``."""
    if not os.path.exists(args.script):
        print(f"jobflow launch: script {args.script!r} does not exist", file=sys.stderr)
        return 2
    try:
        return launch(
            worker_command(args.script, args.args),
            args.nproc,
            cpu_devices=args.cpu_devices,
            port=args.port,
            timeout=args.timeout,
            grace=args.grace,
            verbose=args.verbose,
        )
    except ValueError as e:
        print(f"jobflow launch: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobflow.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
