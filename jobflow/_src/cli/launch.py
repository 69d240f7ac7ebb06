"""``jobflow launch``: start a multi-process run of a script on this machine.

    jobflow launch -n 2 train.py --epochs 3
    python -m jobflow.launch -n 2 --cpu-devices 4 train.py

Starts ``n`` copies of ``python script.py args...``, each with the environment that
:func:`jobflow.env.init` reads (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``; the coordinator listens on a free loopback port, which the launcher
holds for the whole run so that nothing else can take it). Every line a process
prints is prefixed with ``[rank]``. When a process fails, the others are stopped
(SIGTERM, then SIGKILL after 5 seconds) and the launcher exits with the first failing
exit code; ``--timeout`` stops everything after that many seconds (exit 124); Ctrl-C
(130) and SIGTERM (143) stop everything too. On Linux the processes also die with the
launcher if it is killed outright.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ["reserve_port", "child_environment", "launch", "add_arguments", "run", "main"]


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


def _pump(stream, prefix: str, out) -> None:
    for line in iter(stream.readline, b""):
        out.write(prefix + line.decode(errors="replace"))
        out.flush()
    stream.close()


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


def launch(
    command: list[str],
    nprocs: int,
    *,
    cpu_devices: int | None = None,
    port: int | None = None,
    timeout: float | None = None,
    grace: float = 5.0,
    out=None,
) -> int:
    """Runs ``command`` in ``nprocs`` processes; returns 0, the first failure's code, or 124.

    Args:
      command: the argv of one process, e.g. ``[sys.executable, "train.py"]``.
      nprocs: how many processes (>= 1).
      cpu_devices: CPU devices per process (``JAX_NUM_CPU_DEVICES``), or None to inherit.
      port: the coordinator's port (default: a free one, reserved for the run).
      timeout: seconds before every process is stopped (exit code 124), or None.
      grace: seconds between SIGTERM and SIGKILL when stopping processes.
      out: where the prefixed output goes (default ``sys.stdout``).
    """
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"launch nprocs must be an int >= 1; got {nprocs!r}")
    if cpu_devices is not None and (
        isinstance(cpu_devices, bool) or not isinstance(cpu_devices, int) or cpu_devices < 1
    ):
        raise ValueError(f"launch cpu_devices must be an int >= 1 or None; got {cpu_devices!r}")
    if not command:
        raise ValueError("launch needs a command to run")
    out = sys.stdout if out is None else out
    reservation = None
    if port is None:
        reservation, port = reserve_port()
    procs, pumps = [], []
    hook = _die_with_parent_hook()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        for rank in range(nprocs):
            proc = subprocess.Popen(
                command,
                env=child_environment(os.environ, rank, nprocs, port, cpu_devices),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=hook,
            )
            procs.append(proc)
            pump = threading.Thread(target=_pump, args=(proc.stdout, f"[{rank}] ", out), daemon=True)
            pump.start()
            pumps.append(pump)
        code = _wait(procs, timeout, out)
    except KeyboardInterrupt:
        out.write("jobflow launch: interrupted; stopping every process\n")
        code = 130
    except _Terminated:
        out.write("jobflow launch: terminated; stopping every process\n")
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


def _wait(procs, timeout, out) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        codes = [p.poll() for p in procs]
        failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            rank, code = failed[0]
            code = 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N
            if any(c is None for c in codes):
                out.write(f"jobflow launch: process {rank} exited with code {code}; stopping the others\n")
            return code
        if all(c == 0 for c in codes):
            return 0
        if deadline is not None and time.monotonic() > deadline:
            out.write(f"jobflow launch: timed out after {timeout:g} s; stopping every process\n")
            return 124
        time.sleep(0.05)


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
    parser.add_argument("script", help="the Python script every process runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")


def run(args) -> int:
    """``jobflow launch``."""
    if not os.path.exists(args.script):
        print(f"jobflow launch: script {args.script!r} does not exist", file=sys.stderr)
        return 2
    try:
        return launch(
            [sys.executable, args.script, *args.args],
            args.nproc,
            cpu_devices=args.cpu_devices,
            port=args.port,
            timeout=args.timeout,
        )
    except ValueError as e:
        print(f"jobflow launch: {e}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobflow.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
