#!/usr/bin/env python3
"""Export a model checkpoint into an engine bundle (model.pt + engine.json + tokenizer).

Usage:
  python tools/export.py --checkpoint DIR --out BUNDLE_DIR [--family F] [--max-length N]
  python tools/export.py --family cross_encoder --tiny --out BUNDLE_DIR [--seed N]
                         [--tiny-checkpoint-dir DIR]
  python tools/export.py --family structbert (--checkpoint DIR | --tiny) --out BUNDLE_DIR
                         [--kind cross_encoder|bi_encoder]
  python tools/export.py --checkpoint bge-reranker-v2-minicpm-layerwise --out DIR --cutoff-layer 28
  python tools/export.py --family cross_encoder --tiny --shape bce-reranker-base --out BUNDLE_DIR
                         --dtype bf16 --embedding-dtype int8

Each family lives in ``models/<family>/export.py`` and provides
``export_bundle(checkpoint_dir, out_dir, max_length=None)`` and
``write_tiny_checkpoint(out_dir, seed=0)``; ``--kind``, when given, is passed
on to ``export_bundle`` as a keyword.  A family's ``TINY_SHAPES`` names
random checkpoints of a published model's size (``--shape``), for memory
benchmarks: real architecture and sizes, random weights, a small tokenizer.  Re-running overwrites the bundle files
in place.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _families() -> list[str]:
    return sorted(p.parent.name for p in (REPO_ROOT / "models").glob("*/export.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=_families(),
                        help="model family (a package under models/); with --checkpoint it is "
                             "worked out from the directory's files when left out "
                             "(models/common/checkpoint_family.py)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="HF checkpoint directory (local)")
    src.add_argument("--tiny", action="store_true",
                     help="write a tiny random checkpoint first and export it")
    parser.add_argument("--out", type=Path, required=True, help="bundle output directory")
    parser.add_argument("--max-length", type=int, default=None,
                        help="default truncation length recorded in engine.json "
                             "(default: min(512, model position limit))")
    parser.add_argument("--kind", default=None,
                        help="bundle kind for families that export several (structbert: "
                             "cross_encoder or bi_encoder; default cross_encoder)")
    parser.add_argument("--cutoff-layer", type=int, default=None,
                        help="llm_reranker, layerwise (bge-reranker-v2-minicpm-layerwise): the "
                             "layer whose score head gives the score (default the last); only "
                             "that many layers run")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="cast every floating-point weight to this dtype and trace the "
                             "graph in it (engine.json graph_dtype), as model.half() runs in "
                             "Python: the engine loads it at its final size and runs it in this "
                             "dtype only. For bf16 arithmetic with fp32 LayerNorm parameters, "
                             "export fp32 and run it with model.dtype: bf16 (docs/speed.md)")
    parser.add_argument("--format", choices=["torchscript", "aoti"], default="torchscript",
                        help="the model file: a TorchScript trace (model.pt) or an AOTInductor "
                             "package compiled for this machine's CPU (model.pt2; "
                             "engine.json compiled_for). docs/models.md")
    parser.add_argument("--embedding-dtype", choices=["same", "bf16", "int8"], default="same",
                        help="store the word-embedding table apart, in bf16 or in int8 with a "
                             "scale per row; the engine maps it into memory")
    parser.add_argument("--shape", default=None,
                        help="with --tiny: a published model's sizes (the family's TINY_SHAPES)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --tiny")
    parser.add_argument("--tiny-option", action="append", default=[], metavar="KEY=VALUE",
                        help="with --tiny: a keyword of the family's write_tiny_checkpoint "
                             "(e.g. embedder: pooling=mean, dense=0, architecture=bert); "
                             "VALUE is read as JSON when it parses, else as a string")
    parser.add_argument("--tiny-checkpoint-dir", type=Path, default=None,
                        help="where --tiny writes its checkpoint (default: OUT/checkpoint)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args(argv)

    if args.checkpoint is not None:
        if not args.checkpoint.is_dir():
            parser.error(f"--checkpoint {args.checkpoint}: not a directory")
        if not (args.checkpoint / "config.json").is_file():
            parser.error(f"--checkpoint {args.checkpoint}: no config.json (not a HF checkpoint)")
    tiny_options = {}
    for option in args.tiny_option:
        key, sep, value = option.partition("=")
        if not sep or not key:
            parser.error(f"--tiny-option {option!r}: expected KEY=VALUE")
        try:
            tiny_options[key] = json.loads(value)
        except json.JSONDecodeError:
            tiny_options[key] = value
    if tiny_options and not args.tiny:
        parser.error("--tiny-option only makes sense with --tiny")
    if args.tiny_checkpoint_dir is not None and not args.tiny:
        parser.error("--tiny-checkpoint-dir only makes sense with --tiny")
    if args.max_length is not None and args.max_length <= 0:
        parser.error("--max-length must be positive")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a directory")

    if args.family is None:
        if args.checkpoint is None:
            parser.error("--tiny needs --family: say which family's tiny checkpoint to write")
        from models.common.checkpoint_family import infer_family  # noqa: PLC0415
        try:
            args.family, why = infer_family(args.checkpoint)
        except ValueError as e:
            parser.error(str(e))
        print(f"family: {args.family} ({why})")

    import torch  # after argument checks, so --help and usage errors stay fast
    torch.set_num_threads(max(1, args.threads))
    family = importlib.import_module(f"models.{args.family}.export")

    shapes = getattr(family, "TINY_SHAPES", {})
    if args.shape is not None and (not args.tiny or args.shape not in shapes):
        parser.error(f"--shape needs --tiny and one of {sorted(shapes)} for family {args.family}")
    if args.format == "aoti" and args.dtype != "fp32":
        # Inductor's bf16 kernels keep fp32 intermediates, so a package differs from the eager
        # bf16 model by bf16 rounding (0.009 on the bce-reranker-base shape), and the exporter's
        # check (1e-5 against the eager model) needs a criterion for that first.
        parser.error("--format aoti makes fp32 packages only for now; use --dtype fp32, or "
                     "--format torchscript for a bf16 or fp16 bundle")
    if args.format == "aoti" and args.embedding_dtype != "same":
        parser.error("--embedding-dtype needs --format torchscript: a package holds its table")
    for option in ("kind", "cutoff_layer"):
        if (getattr(args, option) is not None and
                option not in inspect.signature(family.export_bundle).parameters):
            parser.error(f"--{option.replace('_', '-')} is not supported by family {args.family}")

    t0 = time.time()
    checkpoint = args.checkpoint
    if args.tiny:
        checkpoint = args.tiny_checkpoint_dir or args.out / "checkpoint"
        unknown = sorted(set(tiny_options) -
                         set(inspect.signature(family.write_tiny_checkpoint).parameters))
        if unknown and "kwargs" not in inspect.signature(family.write_tiny_checkpoint).parameters:
            parser.error(f"--tiny-option {unknown[0]}: not a keyword of {args.family}'s "
                         "write_tiny_checkpoint")
        family.write_tiny_checkpoint(checkpoint, seed=args.seed,
                                     **(shapes[args.shape] if args.shape else {}), **tiny_options)
        print(f"tiny checkpoint: {Path(checkpoint).resolve()} ({time.time() - t0:.1f}s)")
    try:
        kwargs = {option: getattr(args, option) for option in ("kind", "cutoff_layer")
                  if getattr(args, option) is not None}
        family.export_bundle(checkpoint, args.out, max_length=args.max_length, dtype=args.dtype,
                             model_format=args.format, **kwargs)
        if args.embedding_dtype != "same":
            from models.common.bundle import convert_bundle_dtype
            convert_bundle_dtype(args.out, args.dtype, args.embedding_dtype)
    except (ValueError, FileNotFoundError) as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1
    print(f"total {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
