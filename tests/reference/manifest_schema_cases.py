#!/usr/bin/env python3
"""Manifests for the schema agreement test: the fixture bundles' engine.json files as exported,
and each broken in one way (a required key gone, a wrong type, a value out of range, a rule
between keys broken), with the verdict of the jsonschema package on each. The C++ test
(tests/unit/json_schema_test.cc) checks that the engine's validator gives the same verdicts, so
the one schema file means the same on both sides.

Usage: manifest_schema_cases.py --bundles DIR [DIR ...] --out cases.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from models.common.bundle import manifest_schema  # noqa: E402


def mutations(manifest: dict):
    """(name, changed copy) for each way of breaking (or harmlessly changing) ``manifest``."""
    schema = manifest_schema()
    for key in schema["required"]:
        changed = copy.deepcopy(manifest)
        changed.pop(key, None)
        yield f"without {key}", changed
    wrong = {"format_version": 2, "vocab_size": "many", "max_positions": 0, "model_file": "",
             "model_sha256": "ABC", "inputs": [], "outputs": [3], "dtype": "float8",
             "graph_dtype": "int4", "tokenizer": "sentencepiece", "family": 7,
             "embedding_parameter": None, "max_length": 1.5, "pooling": 1,
             "sparse_skip_ids": ["a"], "yes_token_id": "yes", "architecture": []}
    for key, value in wrong.items():
        changed = copy.deepcopy(manifest)
        changed[key] = value
        yield f"{key} = {json.dumps(value)}", changed
    harmless = {"vocab_size": float(manifest["vocab_size"]), "a_family_key": {"x": 1},
                "max_length": 128}
    for key, value in harmless.items():
        changed = copy.deepcopy(manifest)
        changed[key] = value
        yield f"{key} = {json.dumps(value)} (allowed)", changed
    changed = copy.deepcopy(manifest)
    changed["tokenizer"].pop("kind")
    yield "tokenizer without kind", changed
    changed = copy.deepcopy(manifest)
    changed["graph_dtype"] = "bfloat16"
    changed["dtype"] = "float32"
    yield "a bfloat16 graph over float32 weights", changed
    changed = copy.deepcopy(manifest)
    changed["graph_dtype"] = "float16"
    changed["dtype"] = "float16"
    yield "a float16 graph over float16 weights (allowed)", changed
    table = {"file": "embeddings.int8", "dtype": "int8", "rows": 10, "cols": 4, "sha256": "0" * 64}
    for name, table_change, scale in (("an int8 table without embedding_scale", {}, None),
                                      ("an int8 table with an empty embedding_scale", {}, ""),
                                      ("a bfloat16 table without embedding_scale (allowed)",
                                       {"dtype": "bfloat16"}, None),
                                      ("a table of 0 rows", {"rows": 0}, "s"),
                                      ("a table without sha256", {"sha256": None}, "s")):
        changed = copy.deepcopy(manifest)
        changed["embedding_table"] = {k: v for k, v in {**table, **table_change}.items()
                                      if v is not None}
        changed.pop("embedding_scale", None)
        if scale is not None:
            changed["embedding_scale"] = scale
        yield name, changed
    target = {"device": "cpu", "vector_isa": "avx512", "cpu_features": ["avx512f", "fma"]}
    for name, format_, compiled_for in (
            ("a package without compiled_for", "aoti", None),
            ("a package with compiled_for (allowed)", "aoti", target),
            ("a package compiled for a TPU", "aoti", {**target, "device": "tpu"}),
            ("a package with an empty CPU feature", "aoti", {**target, "cpu_features": [""]}),
            ("a package without vector_isa", "aoti",
             {k: v for k, v in target.items() if k != "vector_isa"}),
            ("model_format onnx", "onnx", target)):
        changed = copy.deepcopy(manifest)
        changed["model_format"] = format_
        changed.pop("compiled_for", None)
        if compiled_for is not None:
            changed["compiled_for"] = compiled_for
        yield name, changed
    yield "not an object", [manifest]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    validator = jsonschema.Draft202012Validator(manifest_schema())
    cases = []
    for bundle in args.bundles:
        manifest = json.loads((Path(bundle) / "engine.json").read_text(encoding="utf-8"))
        for name, document in [("as exported", manifest), *mutations(manifest)]:
            errors = list(validator.iter_errors(document))
            cases.append({"bundle": Path(bundle).name, "name": name, "document": document,
                          "valid": not errors,
                          "message": errors[0].message if errors else ""})
    Path(args.out).write_text(json.dumps(cases, indent=1), encoding="utf-8")
    valid = sum(c["valid"] for c in cases)
    print(f"{len(cases)} manifests ({valid} valid) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
