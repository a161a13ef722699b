"""Where a sweep's time went: a timeline of the host's phases and of every compile.

A `Profile` records spans `(phase, start, end, thread, program)`. The sweep wraps its own
phases (plan, init, step limit, waiting for a compile, chunks, checkpoints, readout,
writing); JAX reports each trace, lowering and backend compile as a time span through
`jax.monitoring`, from whichever thread compiles (a chunk compiles in a background thread
while `init` compiles and runs), so the timeline shows which compiles were hidden.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

# JAX's time-span events for the three stages of turning a jitted function into a program
COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
# the host's phases, in the order a sweep meets them (`prepare`: a group's programs built, and
# the chunk traced for its background compile)
PHASES = ("start-up", "plan", "prepare", "init", "step limit", "compile wait", "steps", "checkpoints", "readout", "write")


def process_start() -> float | None:
    """The wall-clock time this process started (Linux's /proc), or None elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            after_name = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + int(after_name[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Profile:
    """A sweep's timeline. `span(phase)` times a host phase; `listening()` adds JAX's
    compile events; `totals()`, `table()`, `timeline()` and `record()` read it back."""

    def __init__(self, start: float | None = None):
        self.t0 = time.time() if start is None else start
        self.spans: list[tuple] = []
        self._lock = threading.Lock()

    def add(self, phase, start, end, program=""):
        with self._lock:
            self.spans.append((phase, float(start), float(end), threading.current_thread().name, program))

    @contextlib.contextmanager
    def span(self, phase: str):
        start = time.time()
        try:
            yield
        finally:
            self.add(phase, start, time.time())

    def _on_event(self, event, start, end, **kwargs):
        stage = COMPILE_EVENTS.get(event)
        if stage is not None:
            name = str(kwargs.get("fun_name", ""))
            self.add(stage, start, end, name[4:-1] if name.startswith("jit(") and name.endswith(")") else name)

    @contextlib.contextmanager
    def listening(self):
        """Record JAX's trace, lower and compile spans while inside."""
        import jax.monitoring as mon

        mon.register_event_time_span_listener(self._on_event)
        try:
            yield self
        finally:
            mon.unregister_event_time_span_listener(self._on_event)

    def totals(self) -> dict:
        """Seconds per host phase (main thread), the wall time since `t0`, and per program its
        trace/lower/compile seconds, with the part of those done outside the main thread
        (`hidden`: overlapped with the main thread's work)."""
        main = threading.main_thread().name
        out = {"wall": max((s[2] for s in self.spans), default=self.t0) - self.t0}
        for phase in PHASES:
            out[phase] = sum(e - s for p, s, e, th, _ in self.spans if p == phase and th == main)
        programs = {}
        for p, s, e, th, prog in self.spans:
            if p in COMPILE_EVENTS.values():
                entry = programs.setdefault(prog or "?", {"trace": 0.0, "lower": 0.0, "compile": 0.0, "hidden": 0.0})
                entry[p] += e - s
                entry["hidden"] += 0.0 if th == main else e - s
        out["programs"] = programs
        # init's own compile runs on the main thread inside the `init` span; the rest is its run
        # (building the problem, drawing the samples, the first record)
        init = programs.get("init", {})
        out["init compile"] = sum(init.get(k, 0.0) for k in ("trace", "lower", "compile")) - init.get("hidden", 0.0)
        out["init run"] = max(out["init"] - out["init compile"], 0.0)
        out["compile"] = sum(v["compile"] + v["lower"] + v["trace"] for v in programs.values())
        out["compile hidden"] = sum(v["hidden"] for v in programs.values())
        return out

    def table(self) -> str:
        """The totals as lines a user reads: each phase's seconds and share of the wall time,
        then each program's compile."""
        t = self.totals()
        wall = t["wall"] or float("nan")
        lines = [f"{'phase':<14}{'seconds':>9}{'share':>8}"]
        for p in PHASES:
            if t[p] > 0:
                lines.append(f"{p:<14}{t[p]:>9.2f}{t[p] / wall:>8.0%}")
            if p == "init" and t[p] > 0:
                lines += [f"  {k:<12}{t['init ' + k]:>9.2f}{t['init ' + k] / wall:>8.0%}" for k in ("compile", "run")]
        rest = wall - sum(t[p] for p in PHASES)
        lines += [f"{'other':<14}{rest:>9.2f}{rest / wall:>8.0%}", f"{'wall':<14}{wall:>9.2f}"]
        lines.append(f"compile: {t['compile']:.2f} s in all ({t['compile hidden']:.2f} s in background threads, "
                     "behind other work); by program (trace + lower + compile):")
        for name, v in sorted(t["programs"].items(), key=lambda kv: -kv[1]["compile"]):
            lines.append(f"  {name:<14}{v['trace'] + v['lower'] + v['compile']:>7.2f} s"
                         f"{'  (background)' if v['hidden'] else ''}")
        return "\n".join(lines)

    def timeline(self) -> str:
        """Every span in start order, seconds from `t0`: what ran when, in which thread."""
        rows = sorted(self.spans, key=lambda s: s[1])
        return "\n".join(f"{s - self.t0:8.2f} {e - self.t0:8.2f}  {th[:12]:<12} {p:<12} {prog}"
                         for p, s, e, th, prog in rows)

    def record(self) -> dict:
        """The totals and the spans (seconds from `t0`), for the dataset's attribute `profile`."""
        spans = [[p, round(s - self.t0, 4), round(e - self.t0, 4), th, prog] for p, s, e, th, prog in self.spans]
        return {"totals": self.totals(), "spans": spans}


class NoProfile:
    """The profile of a run that is not profiled: every span is free."""

    @contextlib.contextmanager
    def span(self, phase: str):
        yield

    @contextlib.contextmanager
    def listening(self):
        yield self


NO_PROFILE = NoProfile()
