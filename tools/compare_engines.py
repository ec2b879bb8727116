"""Runs the same jobs with two engine binaries and compares their outputs byte for byte: the check
that a refactoring changed nothing a user sees. Every family and task on the test fixtures, in
fp32, bf16 and with int8 layers, and a launch on two CPU workers against the old single process.

    .venv/bin/python tools/compare_engines.py --old OLD_ENGINE --new NEW_ENGINE \
        [--fixtures build/test_fixtures] [--old-set KEY=VALUE ...] [--rename OLD_KEY=NEW_KEY ...]

--rename maps a config key the new binary spells differently (task.long_passages=
model.options.long_passages); the old binary gets the old spelling. Exit status 0 when every
output is identical.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def cases(fixtures: str) -> list:
    """(name, bundle, task, input file, --set list) for each job."""
    rerank = os.path.join(fixtures, "bce_records.jsonl")
    pairs = os.path.join(fixtures, "pairs.jsonl")
    chinese = os.path.join(fixtures, "chinese_pairs.jsonl")
    texts = "texts.jsonl"  # written by main() from the rerank records' passages
    chinese_texts = "chinese_texts.jsonl"
    return [
        ("cross-encoder rerank", "xlmr_tiny", "rerank", rerank, ["task.max_length=256"]),
        ("cross-encoder rerank top_k, normalize", "xlmr_tiny", "rerank", rerank,
         ["task.max_length=128", "task.top_k=2", "task.normalize=true"]),
        ("cross-encoder chunk_max", "xlmr_tiny", "rerank", rerank,
         ["task.max_length=256", "task.long_passages=chunk_max", "task.chunk_overlap=40",
          "task.normalize=true"]),
        ("cross-encoder instructions", "xlmr_tiny", "score", pairs,
         ["model.options.query_instruction=query", "model.options.passage_instruction=passage"]),
        ("cross-encoder score bf16", "xlmr_tiny_bf16", "score", pairs, []),
        ("cross-encoder score int8 layers", "xlmr_tiny", "score", pairs, ["model.quantize=int8"]),
        ("cross-encoder score int8 table", "xlmr_tiny_int8", "score", pairs, []),
        ("structbert score", "sbert_tiny", "score", chinese, ["task.max_length=128"]),
        ("bi-encoder embed", "sbert_tiny_bi", "embed", chinese_texts, []),
        ("bge-m3 embed all outputs", "m3_tiny", "embed", texts,
         ["model.options.outputs=dense,sparse,colbert", "model.options.sparse_tokens=true"]),
        ("bge-m3 rerank combined", "m3_tiny", "rerank", rerank, ["model.options.mode=combined"]),
        ("bge-m3 embed bf16", "m3_tiny_bf16", "embed", texts, []),
        ("llm reranker", "llm_tiny", "rerank", rerank, ["task.max_length=256"]),
        ("llm reranker bf16", "llm_tiny_bf16", "score", pairs, []),
    ]


def config_text(bundle: str, task: str, input_path: str, output_path: str) -> str:
    return (f"model:\n  path: {bundle}\n  device: cpu\n  threads: 2\n"
            f"task:\n  kind: {task}\n"
            f"input:\n  path: {input_path}\noutput:\n  path: {output_path}\n"
            "logging:\n  level: warn\n  progress_interval_s: 0\n")


def run(engine: str, config: str, settings: list, launch: bool = False) -> None:
    command = [engine] + (["launch", "--devices", "cpu:2"] if launch else []) + ["--config", config]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")


def spelled(settings: list, renames: dict, new: bool) -> list:
    """The settings as the old binary takes them, or with renamed keys for the new one."""
    out = []
    for setting in settings:
        key, value = setting.split("=", 1)
        out.append(f"{renames.get(key, key) if new else key}={value}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--fixtures", default="build/test_fixtures")
    parser.add_argument("--rename", action="append", default=[],
                        help="OLD_KEY=NEW_KEY: a key the new binary spells differently")
    args = parser.parse_args()
    renames = dict(item.split("=", 1) for item in args.rename)
    fixtures = os.path.abspath(args.fixtures)
    different = 0
    with tempfile.TemporaryDirectory() as work:
        # Embedding inputs: the passages of the rerank records, the first texts of the pairs.
        with open(os.path.join(fixtures, "bce_records.jsonl"), encoding="utf-8") as lines, \
                open(os.path.join(work, "texts.jsonl"), "w", encoding="utf-8") as out:
            for number, line in enumerate(lines):
                for index, passage in enumerate(json.loads(line)["passages"][:3]):
                    out.write(json.dumps({"id": f"{number}-{index}", "text": passage}) + "\n")
        with open(os.path.join(fixtures, "chinese_pairs.jsonl"), encoding="utf-8") as lines, \
                open(os.path.join(work, "chinese_texts.jsonl"), "w", encoding="utf-8") as out:
            for number, line in enumerate(lines):
                out.write(json.dumps({"id": number, "text": json.loads(line)["text_a"]}) + "\n")
        for number, (name, bundle, task, input_path, settings) in enumerate(cases(fixtures)):
            input_path = os.path.join(work, input_path)
            outputs = {}
            runs = [("old", args.old, False), ("new", args.new, False)]
            if number == 0:
                runs.append(("new launch cpu:2", args.new, True))
            for side, engine, launch in runs:
                output = os.path.join(work, f"{number}-{side.replace(' ', '_')}.jsonl")
                config = os.path.join(work, f"{number}-{side.replace(' ', '_')}.yaml")
                with open(config, "w", encoding="utf-8") as file:
                    file.write(config_text(os.path.join(fixtures, bundle), task, input_path, output))
                run(engine, config, spelled(settings, renames, side != "old"), launch)
                with open(output, "rb") as file:
                    outputs[side] = file.read()
            lines = outputs["old"].count(b"\n")
            for side, data in outputs.items():
                if side == "old":
                    continue
                same = data == outputs["old"]
                different += not same
                print(f"{'identical' if same else 'DIFFERENT':9}  {name} ({side}, {lines} lines)")
    print(f"{different} of the outputs differ" if different else "every output is identical")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
