"""One engine's worker process: `python worker.py ENGINE`, driven by `run.py`.

Protocol: JSON lines. The worker prints `{"event": "ready", ...}` once its
vocabulary is built, then for each job line read from stdin,

    {"spec": {...}, "texts": [[ids...], ...], "first": K, "eos": ID}

prints `{"event": "compiled", ...}`, one `{"event": "text", ...}` per text
(numbered from K) and `{"event": "done"}`. The parent enforces the time-outs
by killing this process; a crash is simply the end of the stream.

Timing (time.perf_counter_ns, garbage collector off while timing):
- compile: grammar -> compiled grammar -> new matcher -> first mask filled;
- mask: one `fill()` (the first text's first mask is the one timed in compile);
- accept: one `accept(token)`, for the text's tokens (not the final stop token).
At the stop token the mask must allow it and the engine must accept it
(outlines-core ends on `Guide.is_finished()` instead: its `advance` never
takes the EOS token).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import time
import traceback
from typing import Any

for _var in (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "TVM_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
):
    os.environ.setdefault(_var, "false" if _var == "TOKENIZERS_PARALLELISM" else "1")

import engines  # noqa: E402  (after the thread settings)
import qwen  # noqa: E402


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def where(seq: list[int], step: int) -> str:
    """The failing token and the text just before it, for the report."""
    tokens = _tokens()
    before = b"".join(tokens[t] for t in seq[max(0, step - 8) : step])
    return f"token {seq[step]} {tokens[seq[step]]!r} after {before[-40:]!r}"


@functools.cache
def _tokens() -> list[bytes]:
    return qwen.all_tokens()


def run_job(adapter: engines.Adapter, job: dict[str, Any]) -> None:
    pc = time.perf_counter_ns
    eos = int(job["eos"])
    texts: list[list[int]] = job["texts"]
    first = int(job["first"])
    is_outlines = adapter.name == "outlines"
    gc.collect()
    gc.disable()
    try:
        t0 = pc()
        try:
            compiled = adapter.compile(job["spec"])
            fill, accept = adapter.matcher(compiled)
            t1 = pc()
            fill()
            t2 = pc()
        except engines.Unsupported as e:
            emit({"event": "compiled", "status": "unsupported", "detail": str(e)})
            return
        except engines.CompileError as e:
            emit({"event": "compiled", "status": "compile error", "detail": str(e)[:500]})
            return
        except Exception as e:  # an engine error we did not classify
            detail = f"{type(e).__name__}: {e}"[:500]
            emit({"event": "compiled", "status": "compile error", "detail": detail})
            return
        emit({"event": "compiled", "status": "ok", "compile_ns": t2 - t0, "first_mask_ns": t2 - t1})
        first_mask_ns: int | None = t2 - t1
        for n, ids in enumerate(texts):
            if n > 0:
                fill, accept = adapter.matcher(compiled)
                first_mask_ns = None
            mask_ns: list[int] = []
            accept_ns: list[int] = []
            status = "passed"
            detail = ""
            seq = [*ids, eos]
            for step, tok in enumerate(seq):
                if first_mask_ns is not None:
                    mask_ns.append(first_mask_ns)  # filled during compile
                    first_mask_ns = None
                else:
                    t = pc()
                    fill()
                    mask_ns.append(pc() - t)
                if status == "passed" and not adapter.allowed(tok):
                    status = "mask forbids valid token"
                    detail = f"step {step} of {len(seq)}, {where(seq, step)}"
                err = ""
                try:
                    if tok == eos and step == len(seq) - 1:
                        result: Any = adapter.finished(accept, tok)
                    else:
                        t = pc()
                        result = accept(tok)
                        accept_ns.append(pc() - t)
                    ok = adapter.accept_means_ok(result)
                except Exception as e:  # outlines raises on a refused token
                    ok = False
                    if not is_outlines:
                        err = f"; {type(e).__name__}: {e}"[:300]
                if not ok:
                    also = " (the mask forbade it too)" if status != "passed" else ""
                    status = "valid text rejected"
                    detail = f"step {step} of {len(seq)}, {where(seq, step)}{also}{err}"
                    break
            emit(
                {
                    "event": "text",
                    "index": first + n,
                    "status": status,
                    "detail": detail,
                    "mask_ns": mask_ns,
                    "accept_ns": accept_ns,
                }
            )
    finally:
        gc.enable()
        emit({"event": "done"})


def main() -> None:
    name = sys.argv[1]
    t0 = time.perf_counter()
    adapter = engines.ADAPTERS[name]()
    # Warm-up (not reported): the first compile and mask of a process pay for
    # lazy initialisation in some engines.
    compiled = adapter.compile({"kind": "regex", "pattern": "[a-z]+"})
    fill, accept = adapter.matcher(compiled)
    fill()
    accept(64)  # "a"
    fill()
    emit({"event": "ready", "version": adapter.version(), "setup_s": time.perf_counter() - t0})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            run_job(adapter, json.loads(line))
        except Exception:
            traceback.print_exc()
            raise


if __name__ == "__main__":
    main()
