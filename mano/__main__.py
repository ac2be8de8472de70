"""Command line: `python -m mano {convert,synth,info}`.

  python -m mano convert MANO_RIGHT.pkl MANO_RIGHT.npz [--side right|left]
  python -m mano synth OUTDIR          # synthetic MANO_RIGHT.npz / MANO_LEFT.npz
  python -m mano info PATH             # a model file, or a folder with MANO_RIGHT / MANO_LEFT

Bad input: one line `mano: error: FILE: what is wrong` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .convert import SIDES, ModelFileError, convert, load_model_arrays
from .geometry import signed_volume
from .joints import MANO_SKELETON_NAMES, TIP_VERTEX_SETS

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mano", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="official MANO .pkl (no chumpy needed) -> .npz for smplx / mano")
    conv.add_argument("src", type=Path, help="MANO_RIGHT.pkl or MANO_LEFT.pkl")
    conv.add_argument("dst", type=Path, help="output .npz (written atomically)")
    conv.add_argument("--side", choices=SIDES, help="only needed when neither the data nor the name tell")
    synth = sub.add_parser("synth", help="write the synthetic MANO-format hand (MANO_RIGHT/LEFT.npz)")
    synth.add_argument("outdir", type=Path)
    info = sub.add_parser("info", help="summary of a model file or of a folder with both hands")
    info.add_argument("path", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            if args.dst.is_dir():
                raise ModelFileError(f"{args.dst}: is a folder; give the output file, e.g. {args.dst / 'MANO_RIGHT.npz'}")
            side = convert(args.src, args.dst, args.side)
            print(f"wrote {args.dst} ({side} hand)")
        elif args.command == "synth":
            from .synthetic import write_synthetic

            for path in write_synthetic(args.outdir):
                print(f"wrote {path}")
        else:
            _info(args.path)
    except (ModelFileError, OSError) as exc:  # OSError: unreadable / unwritable paths
        print(f"mano: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _info(path: Path) -> None:
    if path.is_dir():
        files = [p for side in SIDES for p in sorted(path.glob(f"MANO_{side.upper()}.*"))
                 if p.suffix in (".npz", ".pkl")]
        if not files:
            raise FileNotFoundError(f"{path}: no MANO_RIGHT / MANO_LEFT .npz or .pkl in this folder")
        models = {p: load_model_arrays(p) for p in files}
        for p, arrays in models.items():
            _print_summary(p, arrays)
        sides = {a["side"]: a for a in models.values()}
        if set(sides) == set(SIDES):
            diff = np.abs(sides["left"]["shapedirs"][:, 0] - sides["right"]["shapedirs"][:, 0]).sum()
            note = "will be negated on load" if diff < 1 else "ok"
            print(f"left shapedirs[:, 0, :] vs right: |diff| sum {diff:.3f} ({note})")
        return
    _print_summary(path, load_model_arrays(path))


def _print_summary(path: Path, arrays: dict[str, Any]) -> None:
    v, faces = arrays["v_template"], arrays["f"]
    joints = arrays["J_regressor"] @ v
    name = MANO_SKELETON_NAMES.index
    palm = np.linalg.norm(joints[name("middle1")] - joints[name("wrist")])
    volume = signed_volume(v, faces)
    lines = [
        f"{path}: {arrays['side']} hand, {len(v)} vertices, {len(faces)} faces, "
        f"{joints.shape[0]} joints, {arrays['shapedirs'].shape[-1]} shape directions",
        f"  wrist -> middle MCP {palm * 100:.1f} cm; enclosed volume {abs(volume) * 1e6:.0f} cm^3"
        f" (faces point {'out' if volume > 0 else 'in'}wards)",
        f"  mean pose |hands_mean| {np.linalg.norm(arrays['hands_mean']):.3f} rad; "
        f"posedirs {'present' if np.any(arrays['posedirs']) else 'all zero'}",
    ]
    if len(v) > max(TIP_VERTEX_SETS["dir"]):
        tip = v[TIP_VERTEX_SETS["dir"][2]]
        lines.append(f"  wrist -> middle tip (vertex {TIP_VERTEX_SETS['dir'][2]}) "
                     f"{np.linalg.norm(tip - joints[0]) * 100:.1f} cm")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
