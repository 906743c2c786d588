"""Run `python bench/_peak.py OUT_FILE MODULE ARGS...`: run MODULE as __main__, then write its peak RSS.

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


out, module, *args = sys.argv[1:]
atexit.register(_write_peak, out)
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
