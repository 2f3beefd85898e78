"""What every benchmark prints about the machine it ran on."""

import os
import platform


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}, Python {platform.python_version()}"


def loadavg() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every figure here."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"
