"""Helpers shared by the benchmark programs in bench/: random checkpoints of published sizes,
generated inputs, running the engine binary with --set overrides and reading its --summary, and
writing a section of a docs/ page between markers."""

from __future__ import annotations

import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENGINE = REPO / "build" / "engine" / "cli" / "engine"
PYTHON = REPO / ".venv" / "bin" / "python"
MIB = 1 << 20


def log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------------
# Bundles and inputs
# ------------------------------------------------------------------------------------------------

def export(family: str, shape: str | None, out: Path) -> Path:
    """The fp32 bundle of `shape` (random weights), exported once; shape None or "tiny" gives the
    family's tiny test model. The random checkpoint is kept beside it, in OUT-checkpoint."""
    if not (out / "engine.json").is_file():
        log(f"exporting {shape or 'tiny'} {family} into {out}")
        sized = [] if shape in (None, "tiny") else ["--shape", shape]
        subprocess.run([str(PYTHON), "tools/export.py", "--family", family, "--tiny", *sized,
                        "--out", str(out), "--tiny-checkpoint-dir", str(checkpoint_of(out))],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def export_sized(family: str, sizes: dict, out: Path) -> Path:
    """Like export(), for sizes the family's TINY_SHAPES does not name: its
    write_tiny_checkpoint(**sizes), then export_bundle, in a child process."""
    if not (out / "engine.json").is_file():
        log(f"exporting {family} {sizes} into {out}")
        subprocess.run([str(PYTHON), "-c", "import importlib, json, sys; "
                        "family = importlib.import_module(f'models.{sys.argv[1]}.export'); "
                        "family.write_tiny_checkpoint(sys.argv[3], **json.loads(sys.argv[2])); "
                        "family.export_bundle(sys.argv[3], sys.argv[4])",
                        family, json.dumps(sizes), str(checkpoint_of(out)), str(out)],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def checkpoint_of(bundle: Path) -> Path:
    """The random HF checkpoint export() wrote for `bundle`."""
    return bundle.parent / f"{bundle.name}-checkpoint"


def converted(source: Path, name: str, dtype: str, embedding_dtype: str = "same") -> Path:
    """A copy of the fp32 bundle `source` stored in `dtype` (tools/export.py --dtype and
    --embedding-dtype do the same on export). Converted in a child process, so this driver stays
    small."""
    out = source.parent / name
    if not (out / "engine.json").is_file():
        log(f"converting {source.name} into {name} ({dtype}, embeddings {embedding_dtype})")
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(source, out)
        subprocess.run([str(PYTHON), "-c", "import sys; from pathlib import Path; "
                        "from models.common.bundle import convert_bundle_dtype; "
                        "convert_bundle_dtype(Path(sys.argv[1]), sys.argv[2], sys.argv[3])",
                        str(out), dtype, embedding_dtype], cwd=REPO, check=True)
    return out


def traced(source: Path, name: str, dtype: str, embedding_dtype: str = "same",
           model_format: str = "torchscript") -> Path:
    """The checkpoint behind the fp32 bundle `source` exported again with its graph traced in
    `dtype` (tools/export.py --dtype, which the engine runs without autocast), and its table in
    `embedding_dtype`. Unlike converted(), every tensor is in `dtype`, LayerNorm's included.
    `model_format` aoti compiles it into an AOTInductor package for this CPU instead."""
    out = source.parent / name
    if not (out / "engine.json").is_file():
        log(f"exporting {source.name} again as {name} ({dtype} graph, embeddings "
            f"{embedding_dtype}, {model_format})")
        family = json.loads((source / "engine.json").read_text())["family"]
        subprocess.run([str(PYTHON), "tools/export.py", "--family", family, "--checkpoint",
                        str(checkpoint_of(source)), "--out", str(out), "--dtype", dtype,
                        "--embedding-dtype", embedding_dtype, "--format", model_format],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


WORDS = ("memory ranking passage query model engine corpus token batch length budget search "
         "retrieval language 检索 排序 模型 文本 查询 Speicher Anfrage mémoire requête").split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def rerank_records(count: int, passages: int, seed: int) -> list[dict]:
    """`count` English rerank records of `passages` passages of three sentences each."""
    from models.common.multilingual_corpus import passage, query
    rng = random.Random(seed)
    return [{"query": query(rng, "en"), "passages": [passage(rng, "en", 3)
                                                     for _ in range(passages)]}
            for _ in range(count)]


def write_pairs(path: Path, count: int, words: tuple[int, int], seed: int) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            record = {"id": i, "query": text(rng, rng.randint(4, 12)),
                      "passage": text(rng, rng.randint(*words))}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


# ------------------------------------------------------------------------------------------------
# Running the engine
# ------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, command: list[str], peak_rss: int, summary: dict, scores: list[float],
                 seconds: float, records: list[dict] | None = None):
        self.command, self.peak_rss, self.summary = command, peak_rss, summary
        self.scores, self.seconds = scores, seconds
        self.records = records or []

    @property
    def throughput(self) -> float:
        return self.summary["pairs"] / max(self.summary["seconds"], 1e-9)


def record_scores(record: dict) -> list[float]:
    """A score record's score, or a rerank record's scores in passage order."""
    if "results" in record:
        return [r["score"] for r in sorted(record["results"], key=lambda r: r["index"])]
    return [record.get("score", float("nan"))]


def run_engine(work: Path, name: str, bundle: Path, inputs: Path, settings: dict,
               subcommand: list[str] | None = None, config: Path | None = None) -> Run:
    """One engine process scoring `inputs` with `bundle`; `settings` are --set overrides (task.kind
    is score unless they say otherwise), `subcommand` goes first (["launch", "--devices",
    "cpu:2"]), `config` defaults to configs/rerank.yaml. `seconds` is the wall time of the whole
    command, model loading included; `scores` are every record's scores (a rerank record's in
    passage order), `records` the output lines as read."""
    output, summary_file = work / f"{name}.jsonl", work / f"{name}.summary.json"
    config = config or REPO / "configs" / "rerank.yaml"
    command = [str(ENGINE), *(subcommand or []), "--config", str(config),
               "--summary", str(summary_file)]
    base = {"model.path": bundle, "model.device": "cpu", "model.dtype": "bundle",
            "task.kind": "score", "input.path": inputs, "output.path": output,
            "logging.progress_interval_s": 0}
    for key, value in {**base, **settings}.items():
        command += ["--set", f"{key}={value}"]
    start = time.time()
    with open(work / f"{name}.log", "w") as stderr:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        status = process.wait()
    seconds = time.time() - start
    if status != 0:
        raise RuntimeError(f"{name} failed; see {work / (name + '.log')}")
    summary = json.loads(summary_file.read_text())
    records = [json.loads(line) for line in output.read_text().splitlines()]
    scores = [] if settings.get("task.kind") == "embed" else [
        score for record in records for score in record_scores(record)]
    return Run(command, summary["peak_resident"], summary, scores, seconds, records)


def mapped_table_bytes(bundle: Path) -> int:
    """The size of the embedding table file a bundle stores apart (0 when it has none)."""
    table = json.loads((bundle / "engine.json").read_text()).get("embedding_table")
    return (bundle / table["file"]).stat().st_size if table else 0


def max_delta(run: Run, reference: Run, transform=lambda score: score) -> float:
    """The largest |transform(score) - transform(reference score)| over the records."""
    return max(abs(transform(a) - transform(b)) for a, b in zip(run.scores, reference.scores))


def shown(command: list[str]) -> str:
    """The command as a user would type it from the repository root."""
    parts = [os.path.relpath(p, REPO) if p.startswith(str(REPO)) else p for p in command]
    parts = [p.replace(str(REPO) + "/", "") for p in parts]
    return shlex.join(parts)


def isa_flags() -> list[str]:
    """The CPU's flags that decide the engine's plans (AVX2, AVX-512, VNNI, BF16, AMX), sorted."""
    return sorted({flag for line in open("/proc/cpuinfo") if line.startswith("flags")
                   for flag in line.split(":", 1)[1].split()
                   if flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")})


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"



def write_doc_section(doc: Path, begin: str, end: str, lines: list[str]) -> None:
    """Puts `lines` between the markers `begin` and `end` in `doc` (appended when absent)."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    block = "\n".join([begin, *lines, end]) + "\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    doc.write_text(text, encoding="utf-8")
