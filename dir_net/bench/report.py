"""What every benchmark JSON carries (environment, command, date) and the printed table."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

SCHEMA_VERSION = 1
# Top-level keys of every benchmark JSON (docs/BENCHMARKS.md describes them).
RESULT_KEYS = ("schema", "bench", "date", "command", "argv", "settings", "environment", "rows", "extra")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def environment(device: str = "cpu") -> dict[str, Any]:
    """Software versions, CPU / GPU, thread counts and the load average at this moment."""
    import numpy as np
    import torch

    from dir_net import __version__

    env: dict[str, Any] = {
        "device": device,
        "dir_net": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "opencv": _version("cv2"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cuda": torch.version.cuda,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env.update(
            gpu_name=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            gpu_count=torch.cuda.device_count(),
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return env


def command_line(bench: str, settings: Mapping[str, Any]) -> str:
    """A `dirnet bench ...` command that repeats the run (every option explicit)."""
    words = ["dirnet", "bench", bench]
    for key, value in settings.items():
        if value is None or value is False or key == "overrides":
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, ",".join(str(v) for v in value)]
        else:
            words += [flag, str(value)]
    words += list(settings.get("overrides") or ())  # trailing key=value config overrides
    return shlex.join(words)


def make_result(bench: str, settings: Mapping[str, Any], rows: list[dict[str, Any]], device: str = "cpu",
                extra: Mapping[str, Any] | None = None, env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of one benchmark run (keys: RESULT_KEYS)."""
    return {
        "schema": SCHEMA_VERSION,
        "bench": bench,
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "command": command_line(bench, settings),
        "argv": [Path(sys.argv[0]).name] + sys.argv[1:],
        "settings": dict(settings),
        "environment": dict(env) if env is not None else environment(device),
        "rows": rows,
        "extra": dict(extra or {}),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> str:
    """Fixed-width text table of `columns` (missing cells print as '-')."""
    columns = list(columns)
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(items: list[str]) -> str:  # first column left-aligned, the others right-aligned
        return "  ".join(s.rjust(w) if i else s.ljust(w) for i, (s, w) in enumerate(zip(items, widths)))

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)
