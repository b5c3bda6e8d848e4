"""The gateway as N worker processes on one port: a lean supervisor.

``chatstream gateway`` with ``gateway_workers`` > 1 execs this module (same pid, so process
managers and ``chatstream run`` signal it as before), which imports nothing heavy: the memory is
the workers'. Each worker (``python -m gateway.main <index>``) binds the port with SO_REUSEPORT, so the
kernel spreads connections over them evenly (one shared socket would let one worker accept most
keep-alive connections). SIGINT/SIGTERM: every worker is told to stop (each finishes its requests
and flushes its producer) and the supervisor exits 0 once all have. A worker that dies on its own
stops the others and the supervisor exits 1, for the process manager to restart it whole.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

GRACE_S = 30.0


def supervise(workers: int) -> int:
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # own sessions: a terminal's Ctrl-C reaches the supervisor only, which stops each worker once
    children = [subprocess.Popen([sys.executable, "-m", "gateway.main", str(index)], start_new_session=True)
                for index in range(workers)]  # fmt: skip
    failed = False
    while not stopping:
        dead = [c for c in children if c.poll() is not None]
        if dead:
            print(f"gateway: worker {dead[0].pid} exited with status {dead[0].returncode}; stopping the others",
                  file=sys.stderr, flush=True)  # fmt: skip
            failed = True
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            failed = True
    return 1 if failed or any(c.returncode != 0 for c in children) else 0


if __name__ == "__main__":
    sys.exit(supervise(int(sys.argv[1])))
