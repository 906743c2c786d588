"""`python bench/_peak.py OUT_FILE MODULE|SCRIPT.py ARGS...`: run it as __main__, then write its peak RSS.

ru_maxrss of a child survives exec (it starts at the RSS of the process that forked it), so the
child reports its own high-water mark, VmHWM, which exec resets.
"""

import atexit
import runpy
import sys


def _write_peak(out: str) -> None:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(str(kb))


out, target, *args = sys.argv[1:]
atexit.register(_write_peak, out)
sys.argv = [target, *args]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
