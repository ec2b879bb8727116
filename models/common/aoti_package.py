"""A bundle's model as an AOTInductor package (tools/export.py --format aoti): the wrapper the
TorchScript exporters trace is exported with torch.export, batch and length dynamic, compiled
ahead of time by Inductor for this machine's CPU, and packaged as model.pt2, which the engine
runs through LibTorch's AOTIModelPackageLoader (engine/runtime/aoti_model.cc).

TorchScript is deprecated upstream; this is its successor. A package holds machine code for the
CPU it was compiled on, so engine.json records the target (``compiled_for``: the vector ISA and
the CPU features its kernels use) and the engine refuses to run a package on a machine that lacks
them, naming both, instead of crashing on an illegal instruction.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import torch
from torch import nn

PACKAGE_FILE = "model.pt2"


def _cap_vector_isa() -> None:
    """Keeps Inductor's kernels within the ceiling ATEN_CPU_CAPABILITY sets (the engine's
    ENGINE_MAX_CPU_ISA passes it on; tools/test.sh runs as an AVX2-only CPU with it). Inductor
    honours the variable only when its check of that ISA passes, and falls back to the widest
    one otherwise, which would make a package this CPU class cannot run; a vector width fixed
    here gives that ISA or none (scalar kernels, which run anywhere)."""
    from torch._inductor import config  # noqa: PLC0415

    widths = {"default": 1, "avx2": 256}
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "")
    if capability in widths and config.cpp.simdlen is None:
        config.cpp.simdlen = widths[capability]


def compile_target() -> dict:
    """engine.json ``compiled_for`` of a package compiled here (CPU only for now)."""
    from torch._inductor import cpu_vec_isa  # noqa: PLC0415

    _cap_vector_isa()
    isa = cpu_vec_isa.pick_vec_isa()
    flags = str(isa.build_arch_flags()).split() if isa else []
    features = sorted({flag[2:] for flag in flags if flag.startswith("-m")})
    return {"device": "cpu", "vector_isa": str(isa) if isa else "none",
            "cpu_features": features, "min_batch": MIN_BATCH, "torch_version": torch.__version__}


# The transformers models guard on a batch of one (a shortcut path), so packages take batches of at
# least two (engine.json compiled_for.min_batch); the engine runs a single sequence as a batch of
# two (aoti_model.cc).
MIN_BATCH = 2


def _dynamic_shapes(example) -> tuple:
    """Every input is [batch, length]; both dynamic."""
    batch = torch.export.Dim("batch", min=MIN_BATCH, max=65536)
    length = torch.export.Dim("length", min=1, max=65536)
    return tuple({0: batch, 1: length} for _ in example)


def save_verified_package(module: nn.Module, example, out_dir: Path, verify,
                          embedding_name: str) -> Path:
    """Exports ``module`` on ``example``, compiles it into ``out_dir``/model.pt2 and verifies the
    saved package with ``verify(loaded)`` (the callable the package loads as), as
    save_verified_trace does for TorchScript. Returns the package's path."""
    from torch.fx.experimental import _config as fx_config  # noqa: PLC0415

    _cap_vector_isa()
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = out_dir / (PACKAGE_FILE + ".tmp.pt2")
    with torch.no_grad(), fx_config.patch(backed_size_oblivious=True):
        program = torch.export.export(module, tuple(example),
                                      dynamic_shapes=_dynamic_shapes(example), strict=False)
        # Not linked against libtorch.so, which on CUDA builds pulls in LibTorch's CUDA half
        # (about 230 MB resident, engine/memory/cuda_backend.h): its calls into LibTorch's C
        # shim resolve against the libtorch_cpu that the loading process has already.
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(pending),
            inductor_configs={"aot_inductor.link_libtorch": False})
    # The engine has libtorch_cpu in its global scope (it links it); this process gets it too.
    ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"),
                mode=ctypes.RTLD_GLOBAL)
    loaded = torch._inductor.aoti_load_package(str(pending))
    verify(loaded)
    constants = set(loaded.loader.get_constant_fqns())
    if embedding_name not in constants:
        raise RuntimeError(f"{embedding_name} is not a constant of the compiled package "
                           f"({len(constants)} constants)")
    os.replace(pending, out_dir / PACKAGE_FILE)
    return out_dir / PACKAGE_FILE
