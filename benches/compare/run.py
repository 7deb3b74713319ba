"""Comparative benchmark: corral against xgrammar, llguidance and outlines-core.

    python benches/compare/run.py [--quick] [--full]
        [--engines corral,xgrammar,llguidance,outlines]
        [--workloads json,schemas,gbnf,regex] [--out results.json]

Every engine gets the same vocabulary (Qwen2.5, 151,643 tokens + 208 added,
151,936 logits) and the same teacher-forced token ids (tokenised once, by no
engine). Each engine runs in its own worker process (`worker.py`), single
threaded; a hang or crash there is a status, not a dead benchmark. At every
step the worker times one full-vocabulary bitmask fill and one accept, and
checks that the mask allows the next token and that the engine accepts it.

Output: a Markdown report (printed, and written next to `--out` as `.md`) with
p50 / p90 / p99 / max of mask and accept times (µs), compile times (ms:
grammar -> ready matcher with its first mask), status counts, corral's ratio
to each engine, and the machine; plus the raw results as JSON (`--out`).

When corral is among the engines, the run then measures corral's targets
that no other engine shares (`benches/python/`: batch_throughput.py,
memory.py, vocab_scaling.py, each in its own process; `--no-targets` skips
them) and ends the report with every target of issue 5 checked against this
run's figures (`targets.py`).
Needs the `bench` extra: `pip install '.[bench]'`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import qwen
import targets
import workloads

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# corral's own target scripts: name -> (script, arguments, --quick arguments)
CORRAL_ONLY = {
    "batch": ("batch_throughput.py", [], ["--steps", "40", "--rounds", "3"]),
    "memory": ("memory.py", [], ["--schemas", "50"]),
    "vocab_scaling": ("vocab_scaling.py", [], ["--docs", "5", "--schemas", "3", "--rounds", "1"]),
}
ENGINES = ("corral", "xgrammar", "llguidance", "outlines")
STATUSES = (
    "passed",
    "compile error",
    "time-out",
    "crash",
    "valid text rejected",
    "mask forbids valid token",
    "unsupported",
    "compiled (no text)",
)
SHORT = {
    "passed": "pass",
    "compile error": "c.err",
    "time-out": "t/o",
    "crash": "crash",
    "valid text rejected": "rej",
    "mask forbids valid token": "forbid",
    "unsupported": "unsup",
    "compiled (no text)": "c.only",
}
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TVM_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class WorkerGone(Exception):
    """The worker process ended (crashed) or was killed."""


class Worker:
    """One engine's worker process with line reads that time out."""

    def __init__(self, engine: str, log_dir: Path) -> None:
        self.engine = engine
        self.log_path = log_dir / f"{engine}.stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.buf = b""
        self.version = ""
        self.setup_s = 0.0
        self.starts = 0

    def start(self, timeout: float) -> None:
        env = {**os.environ, **THREAD_ENV, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), self.engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=HERE,
        )
        log.close()
        self.buf = b""
        self.starts += 1
        ev = self.read(timeout)
        if ev is None or ev.get("event") != "ready":
            self.kill()
            raise SystemExit(f"{self.engine}: worker did not start (see {self.log_path})")
        self.version = str(ev["version"])
        self.setup_s = float(ev["setup_s"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerGone("worker exited") from None

    def read(self, timeout: float) -> dict[str, Any] | None:
        """The next event, None on time-out; WorkerGone if the process ended."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.proc.wait()
                    raise WorkerGone(f"worker exited with status {code}{self._stderr_tail()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        ev: dict[str, Any] = json.loads(line)
        return ev

    def _stderr_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1][:200]}" if lines else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class EngineResult:
    """Everything one engine produced on one workload."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.mask_ns: list[int] = []
        self.accept_ns: list[int] = []
        self.compile_ns: list[int] = []

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "mask_ns": self.mask_ns,
            "accept_ns": self.accept_ns,
            "compile_ns": self.compile_ns,
        }


def run_group(
    w: Worker, group: workloads.Group, res: EngineResult, args: argparse.Namespace
) -> None:
    """Compile one grammar in the worker and teacher-force its texts, restarting
    the worker after a time-out or crash and going on with the next text."""
    texts = group.texts
    next_text = 0
    compile_recorded = False
    while True:
        if not w.alive():
            w.start(args.start_timeout)
        job = {
            "spec": group.spec,
            "texts": [t.ids for t in texts[next_text:]],
            "first": next_text,
            "eos": qwen.EOS_ID,
        }
        try:
            w.send(job)
            ev = w.read(args.compile_timeout)
        except WorkerGone as e:
            _all(res, group, next_text, "crash", f"while compiling: {e}")
            w.kill()
            return
        if ev is None:
            w.kill()
            _all(res, group, next_text, "time-out", f"compile > {args.compile_timeout:g} s")
            return
        if ev["status"] != "ok":
            _all(res, group, next_text, ev["status"], ev.get("detail", ""))
            _drain(w, args)
            return
        if not compile_recorded:
            res.compile_ns.append(int(ev["compile_ns"]))
            compile_recorded = True
        if not texts:
            res.items.append({"id": group.id, "status": "compiled (no text)", "detail": ""})
            _drain(w, args)
            return
        while next_text < len(texts):
            try:
                ev = w.read(args.item_budget)
            except WorkerGone as e:
                _one(res, texts[next_text], "crash", str(e), group.id)
                w.kill()
                next_text += 1
                break
            if ev is None:
                _one(res, texts[next_text], "time-out", f"text > {args.item_budget:g} s", group.id)
                w.kill()
                next_text += 1
                break
            t = texts[ev["index"]]
            res.items.append(
                {
                    "id": t.id,
                    "group": group.id,
                    "status": ev["status"],
                    "detail": ev["detail"],
                    "tokens": len(t.ids),
                }
            )
            res.mask_ns.extend(ev["mask_ns"])
            res.accept_ns.extend(ev["accept_ns"])
            next_text = ev["index"] + 1
        else:
            _drain(w, args)
            return
        if next_text >= len(texts):
            return


def _drain(w: Worker, args: argparse.Namespace) -> None:
    try:
        ev = w.read(args.item_budget)
    except WorkerGone:
        w.kill()
        return
    if ev is None or ev.get("event") != "done":
        w.kill()


def _one(res: EngineResult, t: workloads.Text, status: str, detail: str, group: str = "") -> None:
    res.items.append(
        {"id": t.id, "group": group, "status": status, "detail": detail, "tokens": len(t.ids)}
    )


def _all(res: EngineResult, g: workloads.Group, start: int, status: str, detail: str) -> None:
    if not g.texts:
        res.items.append({"id": g.id, "status": status, "detail": detail})
    for t in g.texts[start:]:
        _one(res, t, status, detail, g.id)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def pct(values: list[int], q: float, scale: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) / scale


def summarize(res: EngineResult) -> dict[str, Any]:
    counts = dict.fromkeys(STATUSES, 0)
    for it in res.items:
        counts[it["status"]] = counts.get(it["status"], 0) + 1
    out: dict[str, Any] = {"items": len(res.items), "counts": counts}
    for key, values, scale in (
        ("mask_us", res.mask_ns, 1e3),
        ("accept_us", res.accept_ns, 1e3),
        ("compile_ms", res.compile_ns, 1e6),
    ):
        out[key] = {
            "n": len(values),
            "p50": pct(values, 50, scale),
            "p90": pct(values, 90, scale),
            "p99": pct(values, 99, scale),
            "max": (max(values) / scale) if values else None,
        }
    return out


def corral_only(quick: bool, log_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Run corral's own target scripts: their figures by name (absent if one
    failed), and what each printed (kept in the results JSON)."""
    out: dict[str, Any] = {}
    printed: dict[str, str] = {}
    for name, (script, argv, quick_argv) in CORRAL_ONLY.items():
        path = log_dir / f"{name}.json"
        cmd = [sys.executable, str(REPO / "benches" / "python" / script), "--json", str(path)]
        cmd += quick_argv if quick else argv
        t0 = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
        printed[name] = f"$ python benches/python/{script} {' '.join(cmd[4:])}\n{done.stdout}"
        if done.returncode != 0 or not path.exists():
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            print(f"  {script} failed ({done.returncode}):\n{tail}", file=sys.stderr)
            continue
        out[name] = json.loads(path.read_text())
        print(f"  {script}: {time.time() - t0:.1f} s", file=sys.stderr)
    return out, printed


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "corral_commit": commit,
        "loadavg_start": os.getloadavg(),
    }


def collapse(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per grammar when all its failing texts failed the same way."""
    out: list[dict[str, Any]] = []
    for f in findings:
        last = out[-1] if out else None
        if (
            last is not None
            and f.get("group")
            and (last["workload"], last["engine"], last.get("group"), last["status"])
            == (f["workload"], f["engine"], f["group"], f["status"])
            and last["detail"] == f["detail"]
        ):
            last["n"] += 1
            last["id"] = f"{f['group']} ({last['n']} texts)"
            continue
        out.append({**f, "n": 1})
    return out


def cause(detail: str) -> str:
    """An error message without its specifics, so that like errors group."""
    text = detail.strip().split("\n")[0]
    text = re.sub(r" at /\S*", "", text)
    text = re.sub(r"\{.*", "{...}", text)
    text = re.sub(r"\d+", "N", text)
    return text[:120]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Run of {report['date']} — `{report['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}; "
        f"Python {m['python']}; corral commit `{m['corral_commit']}`; load average "
        f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; "
        f"wall time {report['wall_s'] / 60:.1f} min.",
        "Engines: "
        + ", ".join(f"{e} {v}" for e, v in report["versions"].items())
        + ". Vocabulary: Qwen2.5, 151,643 tokens + 208 added, 151,936-wide bitmask; "
        "single thread; times per call through each engine's Python binding.",
        "",
    ]
    head = (
        "| workload | engine | texts | "
        + " | ".join(SHORT[s] for s in STATUSES)
        + " | mask p50 | p90 | p99 | max µs | accept p50 | p99 µs | compile p50 | p99 | max ms |"
    )
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for wl, per_engine in report["summary"].items():
        for eng, s in per_engine.items():
            c = s["counts"]
            mk, ac, co = s["mask_us"], s["accept_us"], s["compile_ms"]
            cells = [
                workloads.TITLES[wl],
                eng,
                str(s["items"]),
                *(str(c.get(st, 0)) for st in STATUSES),
                targets.fmt(mk["p50"]),
                targets.fmt(mk["p90"]),
                targets.fmt(mk["p99"]),
                targets.fmt(mk["max"]),
                targets.fmt(ac["p50"]),
                targets.fmt(ac["p99"]),
                targets.fmt(co["p50"]),
                targets.fmt(co["p99"]),
                targets.fmt(co["max"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Status columns: "
        + "; ".join(f"{SHORT[s]} = {s}" for s in STATUSES)
        + ". Mask and accept percentiles are over every step of every text that ran "
        "(up to a failure); compile percentiles over the grammars that compiled.",
        "",
    ]
    if "corral" in report["versions"]:
        lines += [
            "corral ÷ engine (below 1: corral is faster):",
            "",
            "| workload | vs | mask p50 | mask p99 | mask max | accept p50 | compile p50 |"
            " compile p99 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for wl, per_engine in report["summary"].items():
            c = per_engine.get("corral")
            if c is None:
                continue
            for eng, s in per_engine.items():
                if eng == "corral":
                    continue
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            workloads.TITLES[wl],
                            eng,
                            ratio(c["mask_us"]["p50"], s["mask_us"]["p50"]),
                            ratio(c["mask_us"]["p99"], s["mask_us"]["p99"]),
                            ratio(c["mask_us"]["max"], s["mask_us"]["max"]),
                            ratio(c["accept_us"]["p50"], s["accept_us"]["p50"]),
                            ratio(c["compile_ms"]["p50"], s["compile_ms"]["p50"]),
                            ratio(c["compile_ms"]["p99"], s["compile_ms"]["p99"]),
                        ]
                    )
                    + " |"
                )
        lines.append("")
    wrong = [
        f
        for f in collapse(report["findings"])
        if f["status"] in ("valid text rejected", "mask forbids valid token", "crash")
    ]
    lines += ["Correctness findings (valid text rejected, mask forbids valid token, crash):", ""]
    for f in wrong:
        lines.append(
            f"- {workloads.TITLES[f['workload']]}, {f['engine']}, `{f['id']}`: "
            f"{f['status']}" + (f" ({f['detail']})" if f["detail"] else "")
        )
    if not wrong:
        lines.append("- none")
    if "corral" in report["versions"]:
        lines += ["", *targets.markdown(targets.check(report, workloads.TITLES))]
    lines += ["", "Compile errors and time-outs by cause (texts):", ""]
    causes: dict[tuple[str, str, str], int] = {}
    for f in report["findings"]:
        if f["status"] in ("compile error", "time-out"):
            why = cause(f["detail"]) if f["status"] == "compile error" else f["detail"]
            key = (f["workload"], f["engine"], f"{f['status']}: {why}")
            causes[key] = causes.get(key, 0) + 1
    for (wl, eng, why), n in sorted(causes.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1])):
        lines.append(f"- {workloads.TITLES[wl]}, {eng}, {n}: {why}")
    if not causes:
        lines.append("- none")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small samples (a few minutes)")
    ap.add_argument("--full", action="store_true", help="all 7,993 MaskBench schemas")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--workloads", default=",".join(workloads.WORKLOADS))
    ap.add_argument("--schemas", type=int, default=300, help="schema sample size (default 300)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--compile-timeout", type=float, default=10.0, metavar="S")
    ap.add_argument(
        "--item-budget",
        type=float,
        default=30.0,
        metavar="S",
        help="time budget for teacher-forcing one text (default 30 s)",
    )
    ap.add_argument("--start-timeout", type=float, default=300.0, metavar="S")
    ap.add_argument("--out", type=Path, default=Path("compare-results.json"))
    ap.add_argument(
        "--no-targets",
        action="store_true",
        help="skip corral's own target scripts (batch, memory, vocabulary size)",
    )
    ap.add_argument(
        "--dump",
        type=Path,
        metavar="WORKLOADS.json",
        help="only write the workloads (grammar specs and token ids) for "
        "benches/examples/replay.rs",
    )
    ap.add_argument(
        "--report",
        type=Path,
        metavar="RESULTS.json",
        help="only print the Markdown report of an earlier run's results",
    )
    args = ap.parse_args()
    if args.report is not None:
        print(markdown(json.loads(args.report.read_text())))
        return
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r} (choose from {', '.join(ENGINES)})")
    wls = [w.strip() for w in args.workloads.split(",") if w.strip()]

    if args.dump is not None:
        dumped = {
            wl: [
                {"id": g.id, "spec": g.spec, "texts": [t.ids for t in g.texts]}
                for g in workloads.build(
                    wl, quick=args.quick, full=args.full, seed=args.seed, schemas=args.schemas
                )
            ]
            for wl in wls
        }
        args.dump.write_text(json.dumps(dumped))
        print(f"wrote {args.dump}", file=sys.stderr)
        return

    t_start = time.time()
    info = machine()
    print(f"building workloads {', '.join(wls)} ...", file=sys.stderr)
    built = {
        wl: workloads.build(
            wl, quick=args.quick, full=args.full, seed=args.seed, schemas=args.schemas
        )
        for wl in wls
    }
    results: dict[str, dict[str, EngineResult]] = {wl: {} for wl in wls}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="corral-compare-") as tmp:
        log_dir = Path(tmp)
        for eng in engines:
            w = Worker(eng, log_dir)
            w.start(args.start_timeout)
            versions[eng] = w.version
            print(f"{eng} {w.version}: ready in {w.setup_s:.1f} s", file=sys.stderr)
            for wl in wls:
                res = results[wl].setdefault(eng, EngineResult())
                t0 = time.time()
                for k, group in enumerate(built[wl]):
                    run_group(w, group, res, args)
                    if (k + 1) % 50 == 0:
                        print(f"  {eng} {wl}: {k + 1}/{len(built[wl])}", file=sys.stderr)
                s = summarize(res)
                print(
                    f"  {eng} {wl}: {time.time() - t0:.1f} s, "
                    + ", ".join(f"{k} {v}" for k, v in s["counts"].items() if v),
                    file=sys.stderr,
                )
            w.kill()
            if w.starts > 1:
                print(f"  {eng}: worker restarted {w.starts - 1} times", file=sys.stderr)
        extra: dict[str, Any] = {}
        printed: dict[str, str] = {}
        if "corral" in engines and not args.no_targets:
            print("corral's own targets ...", file=sys.stderr)
            extra, printed = corral_only(args.quick, log_dir)
    info["loadavg_end"] = os.getloadavg()
    findings = [
        {"workload": wl, "engine": eng, **it}
        for wl in wls
        for eng, res in results[wl].items()
        for it in res.items
        if it["status"] not in ("passed", "unsupported", "compiled (no text)")
    ]
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benches/compare/run.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "versions": versions,
        "wall_s": time.time() - t_start,
        "summary": {wl: {e: summarize(r) for e, r in results[wl].items()} for wl in wls},
        "findings": findings,
        "corral_only": extra,
        "corral_only_output": printed,
    }
    md = markdown(report)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {**report, "raw": {wl: {e: r.to_json() for e, r in results[wl].items()} for wl in wls}},
        )
    )
    args.out.with_suffix(".md").write_text(md + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
