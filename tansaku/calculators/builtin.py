"""The calculators tansaku ships: ASE EMT, CHGNet and SevenNet (7net-0)."""

from __future__ import annotations

import contextlib
import io
import warnings

from ase.calculators.calculator import Calculator

from tansaku.calculators.registry import (
    MOMENTS_MAGNITUDE,
    MPTRJ_ELEMENTS,
    CalculatorConfigError,
    CalculatorSpec,
    register,
)

EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})


def make_emt() -> Calculator:
    from ase.calculators.emt import EMT

    return EMT()


def make_emt_fast() -> Calculator:
    from tansaku.calculators.emt_fast import EMTFast

    return EMTFast()


def torch_device(device: str) -> str:
    """``device`` (the runtime's ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``) checked against what torch
    sees on this machine: a GPU asked for where there is none is a clear error, not a model crash."""
    import torch

    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise CalculatorConfigError(f"runtime device {device!r}: expected cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CalculatorConfigError(f"runtime device {device!r}: torch {torch.__version__} sees no CUDA GPU "
                                        "on this machine (run there, or set device = \"cpu\")")
        if index and int(index) >= count:
            raise CalculatorConfigError(f"runtime device {device!r}: this machine has {count} CUDA GPU(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise CalculatorConfigError(f"runtime device {device!r}: torch sees no MPS device on this machine")
    return device


def make_chgnet(model: str = "0.3.0", device: str = "cpu") -> Calculator:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    # CHGNet prints banners and torch warns on every call about a tensor-to-scalar conversion in CHGNet's
    # own code: neither is actionable for a screening user, so keep worker logs readable.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
    device = torch_device(device)
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = CHGNet.load(model_name=model, use_device=device, verbose=False)
        return CHGNetCalculator(model=loaded, use_device=device, on_isolated_atoms="ignore")


def make_sevenn(model: str = "7net-0", device: str = "cpu") -> Calculator:
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator(model=model, device=torch_device(device))


# ML potentials reproduce their training data (PBE/PBE+U of the Materials Project), including its limits.
CHGNET_CAVEAT = ("ML potential (CHGNet): moments are unsigned magnitudes, so μ0Ms is only an upper bound and "
                 "ferrimagnets look ferromagnetic; 4f moments follow the training data (frozen for Sm/Nd, large "
                 "for Gd); energies are a PBE(+U) surrogate")
SEVENN_CAVEAT = "ML potential (SevenNet): energies are a PBE(+U) surrogate; no magnetic moments"


register(CalculatorSpec(
    name="emt", factory=make_emt, elements=EMT_ELEMENTS, package="ase", energy_scale="emt",
    description="ASE's effective-medium theory (fast, for tests and fcc alloys)"))
register(CalculatorSpec(
    name="emt-fast", factory=make_emt_fast, elements=EMT_ELEMENTS, package="tansaku", energy_scale="emt",
    description="ASE's EMT compiled with numba: same results, ~50x faster (tansaku.calculators.emt_fast)"))
register(CalculatorSpec(
    name="chgnet", factory=make_chgnet, elements=MPTRJ_ELEMENTS, package="chgnet", magnetic=True,
    defaults={"model": "0.3.0"}, runtime_keys=("device",), moments=MOMENTS_MAGNITUDE, caveat=CHGNET_CAVEAT,
    energy_scale="chgnet-mptrj",
    description="CHGNet universal potential, pretrained weights shipped in the wheel; predicts magnetic moments"))
register(CalculatorSpec(
    name="sevenn", factory=make_sevenn, elements=MPTRJ_ELEMENTS, package="sevenn",
    defaults={"model": "7net-0"}, runtime_keys=("device",), caveat=SEVENN_CAVEAT, energy_scale="sevenn-mptrj",
    description="SevenNet 7net-0 universal potential, weights shipped in the wheel"))
