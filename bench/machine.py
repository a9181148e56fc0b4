"""What machine a benchmark ran on, and whether something else was using it while we timed.

Numbers without the machine line are meaningless, and numbers taken while another process eats the
CPU are wrong: `LoadMonitor` measures the CPU time used by *other* processes during a timed block
(/proc/stat total busy time minus our own process time) so reports can flag busy measurements.
psutil is used when installed; everything falls back to /proc and `resource`.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import threading
import time

from edge_tan.info import cpu_flags, cpu_model, gpus, physical_cores

VERSION_PACKAGES = ("numpy", "opencv-python-headless", "torch", "onnxruntime", "openvino", "nncf", "tensorrt")
BUSY_CORES = 0.5   # other processes using more than this many cores on average = busy machine
MIN_WALL = 1.0     # CPU-time counters tick at 10 ms: shorter blocks cannot be judged


def _version(pkg: str) -> str | None:
    for name in (pkg, pkg.replace("-headless", ""), pkg + "-gpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def machine_info(threads: int | None = None) -> dict:
    """CPU model and flags, cores, threads allowed, RAM, GPUs (nvidia-smi), OS/Python and backend
    versions (absent ones omitted): the description every recorded figure carries."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    versions = {p.replace("opencv-python-headless", "opencv"): v for p in VERSION_PACKAGES
                if (v := _version(p)) is not None}
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "physical_cores": physical_cores(),
            "logical_cpus": os.cpu_count(), "cpus_allowed": affinity, "threads": threads,
            "memory_gib": memory_gib(), "gpus": gpus(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "versions": versions, "hostname": platform.node()}


def memory_gib() -> float | None:
    """Total RAM in GiB from /proc/meminfo (None off Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2 ** 20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_short(info: dict) -> str:
    """One short line for a table header: CPU, cores, RAM, GPU (or 'no GPU')."""
    mem = f", {info['memory_gib']:.0f} GiB" if info.get("memory_gib") else ""
    gpu = "; GPU: " + ", ".join(g.split(",")[0].strip() for g in info["gpus"]) if info.get("gpus") else "; no GPU"
    return f"{info.get('cpu', '?')}, {info.get('physical_cores', '?')} cores{mem}{gpu}"


def machine_line(info: dict) -> str:
    v = ", ".join(f"{k} {val}" for k, val in info.get("versions", {}).items())
    thr = f", {info['threads']} threads used" if info.get("threads") else ""
    return (f"{info['cpu']} — {info['physical_cores']} cores / {info['logical_cpus']} CPUs "
            f"({info['cpus_allowed']} allowed){thr}; Python {info['python']}; {v}")


# ---- load while timing --------------------------------------------------------------------
def _cpu_busy_seconds() -> float | None:
    """Total busy CPU seconds of the whole machine since boot (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:]
        vals = [float(x) for x in parts]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0.0)
        busy = sum(vals[:8]) - idle
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class TreeCPU:
    """CPU seconds used by a process and everything it starts, children of children included, sampled
    from /proc every `period` s in a thread. `os.times()` counts only children that were waited for, so
    a command that starts daemons (a local Ray instance: GCS, raylet, actor processes) would look idle
    and its daemons would count as other load. `also`: processes that already run (a Ray cluster the
    command joins) whose trees count too, from now on. A process that ends between two samples loses
    the CPU it used since the last one."""

    def __init__(self, pid: int, also: tuple[int, ...] = (), period: float = 0.25):
        self.roots, self.period, self.seen = {pid, *also}, period, {}
        self._tick = os.sysconf("SC_CLK_TCK")
        self.base = {p: c for p, c in self._tree().items() if p != pid}   # CPU used before now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tree(self) -> dict[int, float]:
        procs = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = open(f"/proc/{d}/stat").read()
                except OSError:
                    continue
                f = st[st.rindex(")") + 2:].split()
                procs[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / self._tick)   # ppid, utime + stime
        tree, grew = self.roots & procs.keys(), True
        while grew:
            new = {p for p, (pp, _) in procs.items() if pp in tree and p not in tree}
            tree |= new
            grew = bool(new)
        return {p: procs[p][1] for p in tree}

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.seen.update(self._tree())
            self._stop.wait(self.period)

    def stop(self) -> float:
        """Stop sampling; CPU seconds of the tree since the start (call after the process has ended:
        its own CPU is then read from its last sample)."""
        self._stop.set()
        self._thread.join()
        return sum(c - self.base.get(p, 0.0) for p, c in self.seen.items())


class LoadMonitor:
    """`with LoadMonitor() as lm: ...` then `lm.result()`: wall time, our CPU, other processes'
    average cores in use, load average before/after, and `busy` when others used > BUSY_CORES."""

    def __enter__(self):
        self.t0, self.busy0, self.own0, self.load0 = time.perf_counter(), _cpu_busy_seconds(), _own_cpu_seconds(), loadavg()
        return self

    def __exit__(self, *exc):
        self.t1, self.busy1, self.own1, self.load1 = time.perf_counter(), _cpu_busy_seconds(), _own_cpu_seconds(), loadavg()
        return False

    def result(self, own_cpu_s: float | None = None) -> dict:
        """`own_cpu_s`: our CPU seconds when os.times() cannot see them all (TreeCPU)."""
        wall = max(self.t1 - self.t0, 1e-9)
        own = self.own1 - self.own0 if own_cpu_s is None else own_cpu_s
        other = None
        if self.busy0 is not None and self.busy1 is not None and wall >= MIN_WALL:
            other = max(0.0, (self.busy1 - self.busy0) - own) / wall
        return {"wall_s": wall, "own_cores": own / wall, "other_cores": other,
                "loadavg_before": self.load0, "loadavg_after": self.load1,
                "busy": bool(other is not None and other > BUSY_CORES)}


# ---- memory ---------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark for this process (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status_mb(key: str) -> float | None:
    """A memory line of /proc/self/status (e.g. VmHWM, VmRSS) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """RSS high-water mark in MiB (since the last reset_peak_rss, else since process start)."""
    v = _proc_status_mb("VmHWM")
    if v is not None:
        return v
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if platform.system() != "Darwin" else r / 2 ** 20


def rss_mb() -> float:
    v = _proc_status_mb("VmRSS")
    return v if v is not None else peak_rss_mb()
