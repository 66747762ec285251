"""Make sure the system tools the tests and the demo need are present.

espeak-ng and sox (Debian packages) speak the test audio; with ``--cluster``, redis-server
(Debian package) too, which joins LiveKit nodes into a cluster for the cluster tests and
benchmarks; Go builds the LiveKit server (``--server`` builds it now).
As root on Debian/Ubuntu the missing packages are installed with apt-get; otherwise the
script says what to install and exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}
CLUSTER_PACKAGES = {"redis-server": "redis-server"}


def main() -> int:
    wanted = {**PACKAGES, **(CLUSTER_PACKAGES if "--cluster" in sys.argv else {})}
    missing = [pkg for tool, pkg in wanted.items() if not shutil.which(tool)]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print(f"==> installing {' '.join(missing)} with apt-get", flush=True)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        else:
            print(f"missing system packages: {' '.join(missing)}; install them, e.g.\n"
                  f"  sudo apt-get install -y {' '.join(missing)}", file=sys.stderr)
            return 1
    if not shutil.which("go") and not os.environ.get("LIVEKIT_SERVER_BIN"):
        from livekit.agents.testing.server import find_server_binary

        if find_server_binary() is None:
            print("Go is needed once to build the LiveKit server (https://go.dev/doc/install), "
                  "or set LIVEKIT_SERVER_BIN to a livekit-server v1.13.5 binary.", file=sys.stderr)
            return 1
    if "--server" in sys.argv:
        from livekit.agents.testing.server import ensure_server_binary

        print(f"==> LiveKit server: {ensure_server_binary(progress=True)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
