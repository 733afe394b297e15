"""Run modes, sizes, seeds and devices: the one place where the workbook decides how big to go.

The workbook runs in three modes, chosen by the environment variable ``WORKBOOK_MODE``:

* ``smoke`` - continuous integration: tiny sizes, seconds per notebook, numbers meaningless;
* ``cpu``   - Binder or a laptop: each notebook <= 5 min on 2 cores, peak RAM <= 2 GB;
* ``gpu``   - full data and sample counts (Colab or a workstation with CUDA).

Default: ``gpu`` when CUDA is available, else ``cpu``. Sizes differ between modes; code paths
do not. Every size that differs lives in :data:`SIZES`, one row per knob, one column per mode.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any, Iterator

MODES: tuple[str, ...] = ("smoke", "cpu", "gpu")

#: Repository root (the folder that holds ``helpers/``, ``data/`` and ``notebooks/``).
ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = ROOT / "data"
BUILD_DIR: Path = ROOT / "build"


def build_dir(mode: str | None = None) -> Path:
    """Where executed notebooks, HTML, caches, ``results.json`` and the model card go: ``build/<mode>/``.

    One folder per run mode, so a smoke run (seconds, meaningless numbers) never replaces the figures of a
    cpu or gpu run. ``$WORKBOOK_BUILD_DIR`` overrides the whole path (the headless runner sets it for each
    kernel; the tests point it at a temporary folder).
    """
    override = os.environ.get("WORKBOOK_BUILD_DIR")
    return Path(override) if override else BUILD_DIR / get_mode(mode)


#: The repository on GitHub, used for the Binder and Colab badges (``python -m helpers badges``
#: rewrites every badge from this one value).
REPOSITORY: str = "responsible-fm/responsible-foundation-models-workbook"
BRANCH: str = "main"

# fmt: off
#: Every size that differs between modes: ``key -> (smoke, cpu, gpu)``. ``None`` means "all".
SIZES: dict[str, tuple[Any, Any, Any]] = {
    # --- shared (data, encoder) -------------------------------------------------------------
    "adult_train_rows":        (400,   3000,  None),   # rows of the training split used
    "adult_val_rows":          (200,   1000,  None),   # rows of the validation split used
    "adult_test_rows":         (200,   2000,  None),   # rows of the test split used
    "encode_batch_size":       (32,    64,    512),    # sentences per forward pass (inference)
    "seeds":                   (1,     1,     3),      # repeated runs for mean +- sd
    "bootstrap_samples":       (200,   2000,  10000),  # bootstrap resamples for intervals
    "permutations":            (200,   5000,  100000), # permutation-test draws
    # --- 01_pretraining ---------------------------------------------------------------------
    "pt_records":              (1500,  None,  None),   # Adult records in the corpus (None = all 45,222)
    "pt_layers":               (1,     2,     4),      # BERT layers
    "pt_hidden":               (32,    128,   256),    # hidden size (heads x 64, or 2 heads when smaller)
    "pt_heads":                (2,     2,     4),      # attention heads
    "pt_batch_size":           (16,    64,    256),    # lines per training step
    "pt_steps":                (30,    1500,  3000),   # optimiser steps (gpu: ~60 s on an H100, estimated)
    "pt_eval_every":           (10,    150,   250),    # steps between held-out evaluations
    "pt_weat_tests":           ((6,),  (1, 2, 6, 7, 8), tuple(range(1, 11))),  # WEAT tests (1-based)
    # --- 02_data_bias_audit -----------------------------------------------------------------
    "nb02_proxy_rows":         (400,   3000,  None),   # 02: training rows for the proxy classifiers
    "nb02_embed_rows":         (64,    300,   4000),   # 02: sentences embedded to test the text proxy
    "nb02_leak_seeds":         ((0,),  (0, 1, 2, 3, 4), (0, 1, 2, 3, 4)),  # 02: resampling + split draws in the leakage trap
    # --- 03_finetuning_and_fairness_metrics -------------------------------------------------
    "finetune_epochs":         (1,     2,     2),      # full fine-tuning epochs
    "finetune_batch_size":     (16,    16,    64),     # sentences per fine-tuning step
    "finetune_lr":             (2e-4,  1e-4,  5e-5),   # 03: AdamW learning rate (small data: larger steps)
    "finetune_rows":           (32,    400,   None),   # 03: training rows for full fine-tuning
    "nb03_encode_rows":        (128,   1500,  None),   # 03: training rows embedded for the frozen head
    "nb03_test_rows":          (100,   1000,  None),   # 03: test rows every model is evaluated on
    "nb03_lora_lr":            (1e-3,  1e-3,  5e-4),   # 03: AdamW learning rate of the LoRA adapters and head
    "nb03_lora_rank":          (4,     8,     8),      # 03: LoRA rank r (alpha = 2r)
    "nb03_lora_epochs":        (1,     2,     2),      # 03: LoRA fine-tuning epochs
    # --- 04_fairness_constrained_training ---------------------------------------------------
    "nb04_head_epochs":        (10,    60,    60),     # 04: epochs of the frozen-embedding head
    "nb04_head_batch":         (128,   256,   2048),   # 04: head mini-batch (stratified by group x label)
    "nb04_dual_lr":            (1.0,   1.0,   0.2),    # 04: dual step of the head's multiplier (few steps -> larger)
    "nb04_lambdas":            ((0.5, 2.0), (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
                                (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0)),  # 04: penalty sweep
    "nb04_deltas":             ((0.1, 0.02), (0.15, 0.1, 0.05, 0.03, 0.02, 0.0),
                                (0.2, 0.15, 0.1, 0.075, 0.05, 0.04, 0.03, 0.02, 0.01, 0.0)),  # 04: tolerance sweep
    "nb04_expgrad_iter":       (5,     30,    40),     # 04: ExponentiatedGradient iterations
    "nb04_finetune_rows":      (48,    400,   None),   # 04b: training rows for constrained full fine-tuning
    "nb04_finetune_test_rows": (64,    600,   None),   # 04b: test rows scored by the fine-tuned models
    "nb04_finetune_dual_lr":   (1.0,   1.0,   0.1),    # 04b: dual step in fine-tuning (few steps -> larger)
    "nb04_last_layer_batch":   (16,    64,    512),    # 04b: mini-batch of the constrained last layer
    "nb04_best_responses":     (9,     81,    81),     # 04b: best-response heads added to the EO mixture's candidates
    "nb04b_compas_rows":       (600,   None,  None),   # 04b: COMPAS rows (None = all 6,172 after ProPublica's filter)
    # --- 05_regularization ------------------------------------------------------------------
    "reg_train_rows":          (120,   300,   600),    # training sentences: few, so the head overfits
    "reg_test_rows":           (100,   1000,  None),   # adult.test rows for the final, untouched check
    "reg_epochs":              (15,    60,    100),    # epochs per training run of the MLP head
    "reg_lrs":                 ((1e-3, 1e-2), (1e-3, 3e-3, 1e-2, 3e-2), (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
    "reg_decays":              ((1e-2, 1.0), (1e-3, 1e-2, 1e-1, 1.0, 10.0), (1e-3, 1e-2, 1e-1, 1.0, 10.0)),
    "reg_step_decays":         ((1e-4, 1e-2), (1e-4, 1e-3, 3e-3, 1e-2, 3e-2), (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)),  # AdamW: shrink per step
    "reg_mc_passes":           (5,     20,    20),     # T stochastic passes for MC dropout
    # --- 06_explanations --------------------------------------------------------------------
    "explain_train_rows":      (32,    600,   None),   # 06: rows fine-tuned on (each of the two models)
    "explain_epochs":          (1,     2,     2),      # 06: fine-tuning epochs
    "lime_samples":            (40,    300,   5000),   # 06: LIME neighbourhood size per explanation
    "shap_evals":              (30,    200,   500),    # 06: SHAP Partition max_evals per explanation
    "exact_words":             (4,     7,     12),     # 06: words in the sentence explained exactly (2^W calls)
    "lime_seeds":              (2,     3,     10),     # 06: LIME runs compared for stability
    "random_orders":           (2,     10,    50),     # 06: random deletion orders averaged
    "deletion_steps":          (6,     20,    None),   # 06: words hidden along a deletion curve (None = all)
    "global_sentences":        (3,     16,    1000),   # 06: test sentences explained per model (bias plot)
    "global_shap_evals":       (20,    80,    500),    # 06: SHAP max_evals per sentence in the bias plot
    "timing_repeats":          (1,     2,     5),      # 06: warm repetitions in the timing table
    "quant_sentences":         (2,     3,     20),     # 06: test sentences explained with fp32 and lower precisions (CPU only)
    # --- 07_robustness_privacy_governance ---------------------------------------------------
    "nb07_train_rows":         (300,   1500,  None),   # training rows for the 07 heads (subset of adult train)
    "nb07_test_rows":          (150,   600,   None),   # test rows for the 07 evaluations
    "nb07_cf_rows":            (20,    200,   4000),   # sentences for the counterfactual gender swap
    "nb07_attack_rows":        (4,     25,    500),    # sentences attacked (test, and train for the defence)
    "nb07_augment_rows":       (20,    200,   5000),   # training sentences copied with random substitutions
    "nb07_mia_rows":           (100,   400,   2000),   # members = non-members per membership-inference run
    "nb07_mlp_epochs":         (20,    300,   300),    # epochs of the unregularised (memorising) MLP
    "nb07_dp_epochs":          (2,     30,    30),     # epochs of each DP-SGD head (one per epsilon)
    # DP-SGD on LoRA adapters: same loop as the heads; none at cpu size (per-example gradients through MiniLM)
    "nb07_dp_lora_epsilons":   ((8.0,), (),   (float("inf"), 8.0, 3.0, 1.0)),
    "nb07_dp_lora_rows":       (16,    200,   2000),   # training sentences of each DP LoRA model (cpu: no epsilons, none trained)
    "nb07_dp_lora_epochs":     (1,     2,     3),      # epochs of each DP LoRA model
    "nb07_dp_lora_lr":         (1e-2,  1e-2,  3e-3),   # Adam learning rate of the DP LoRA adapters and head
}

#: Expected wall-clock minutes per notebook and mode (smoke, cpu, gpu); the headless runner
#: prints the measured time beside these so a lecturer can plan a class.
EXPECTED_MINUTES: dict[str, tuple[float, float, float]] = {
    # smoke and cpu: measured on a 2-core machine like Binder's (rounded up); gpu: estimates, not yet measured
    "00_start_here": (0.3, 0.5, 0.5),
    "01_pretraining": (0.3, 3.5, 2.0),
    "02_data_bias_audit": (0.3, 0.5, 2.0),
    "03_finetuning_and_fairness_metrics": (0.4, 2.0, 6.0),
    "04_fairness_constrained_training": (0.5, 4.0, 15.0),
    "04b_constraints_at_scale": (0.6, 2.5, 15.0),
    "05_regularization": (0.4, 1.0, 3.0),
    "06_explanations": (0.6, 4.0, 4.0),
    "07_robustness_privacy_governance": (0.5, 2.0, 6.0),
}
# fmt: on


def get_mode(mode: str | None = None) -> str:
    """Return the run mode: ``mode`` if given, else ``$WORKBOOK_MODE``, else ``gpu``/``cpu``.

    Raises:
        ValueError: if the mode is not one of :data:`MODES`.
    """
    chosen = mode if mode is not None else os.environ.get("WORKBOOK_MODE", "").strip().lower()
    if not chosen:
        return "gpu" if cuda_available() else "cpu"
    if chosen not in MODES:
        raise ValueError(
            f"Unknown run mode {chosen!r}. Set WORKBOOK_MODE to one of {', '.join(MODES)} "
            "(smoke = seconds for CI, cpu = Binder/laptop, gpu = full sizes)."
        )
    return chosen


def size(key: str, mode: str | None = None) -> Any:
    """Look up one size from :data:`SIZES` for the current (or given) mode."""
    if key not in SIZES:
        raise ValueError(f"No size called {key!r}. Known sizes: {', '.join(sorted(SIZES))}.")
    return SIZES[key][MODES.index(get_mode(mode))]


def sizes(mode: str | None = None) -> dict[str, Any]:
    """All sizes for the current (or given) mode, as a plain dict (handy to print in a notebook)."""
    i = MODES.index(get_mode(mode))
    return {k: v[i] for k, v in SIZES.items()}


def sizes_table():
    """:data:`SIZES` as a DataFrame (one row per size, one column per mode), each value as written (an integer
    stays an integer) and ``None`` shown as ``"all"``."""
    import pandas as pd

    return pd.DataFrame([["all" if v is None else v for v in row] for row in SIZES.values()],
                        index=list(SIZES), columns=list(MODES), dtype=object)


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard requirement
        return False
    return bool(torch.cuda.is_available())


def get_device(device: str | None = None) -> "torch.device":  # noqa: F821
    """Pick the device: an explicit ``device``, else CUDA if present, else Apple MPS, else CPU.

    Set ``WORKBOOK_DEVICE=cpu`` to force the CPU on a GPU machine (e.g. to compare results).
    """
    import torch

    device = device or os.environ.get("WORKBOOK_DEVICE") or None
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: "torch.device") -> "torch.dtype | None":  # noqa: F821
    """bf16 on CUDA devices that support it, fp16 on older CUDA devices, ``None`` elsewhere."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: "torch.device") -> contextlib.AbstractContextManager:  # noqa: F821
    """Mixed-precision context for forward passes: bf16/fp16 autocast on CUDA, a no-op on CPU.

    On CPU we stay in float32 so that CPU results are the reference the GPU is compared with.
    """
    import torch

    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def release_memory() -> bool:
    """Give memory that Python and the C allocator hold, but no longer use, back to the operating system.

    ``gc.collect()`` frees unreachable objects. Then, where the C library is glibc (Linux), ``malloc_trim(0)``
    returns the free parts of its heaps: glibc keeps the memory of freed medium-sized allocations (a training
    loop's activations, gradients and optimiser state) for reuse, so without this call the process's resident
    memory, which Binder counts against its 2 GB, stays near the training peak and later work stacks on top of it.
    Returns whether a heap was trimmed (``False`` off glibc, where only the garbage collection runs).
    """
    import ctypes
    import gc
    import sys

    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl or another C library without malloc_trim
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def run_seed() -> int:
    """The seed of this run: ``$WORKBOOK_SEED`` (a non-negative integer), default 0.

    ``WORKBOOK_SEED=1 python3 -m helpers run`` re-runs the whole workbook with another seed, to check that what the
    notebooks say holds beyond one draw.
    """
    raw = os.environ.get("WORKBOOK_SEED", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ValueError(f"WORKBOOK_SEED must be a non-negative integer, got {raw!r}.")
    return int(raw)


_SEED: int | None = None


def current_seed() -> int | None:
    """The seed of the last :func:`seed_everything` call in this process (``None`` before any)."""
    return _SEED


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA) so the same seed gives the same numbers.

    Also sets ``PYTHONHASHSEED`` for child processes. Returns the seed for convenience.
    """
    if not isinstance(seed, (int,)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    global _SEED
    _SEED = seed
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover
        pass
    return seed


@contextlib.contextmanager
def seeded(seed: int = 0):
    """Run a block as if after :func:`seed_everything` (``seed``), then give the caller back its own random state.

    A library call that needs reproducible draws from the global generators (torch's default initialisers,
    NumPy's legacy ``np.random``, Python's ``random``) runs inside ``with seeded(seed):``: same seed, same numbers,
    and the notebook's own random streams continue as if the call had drawn nothing.
    """
    import numpy as np
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    hash_seed = os.environ.get("PYTHONHASHSEED")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            seed_everything(seed)
            yield seed
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            if hash_seed is None:
                os.environ.pop("PYTHONHASHSEED", None)
            else:
                os.environ["PYTHONHASHSEED"] = hash_seed


def set_threads(n: int | None = None) -> int:
    """Limit torch's CPU threads (Binder has 2 cores; more threads than cores only thrash)."""
    import torch

    n = n or max(1, min(os.cpu_count() or 1, 8))
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def single_thread_on_cpu(device: "torch.device") -> Iterator[None]:  # noqa: F821
    """Run a block with one torch CPU thread, then restore the previous count (a no-op on a GPU).

    For tiny models (a 384-wide head): splitting their matrices over threads costs more than it saves,
    and on a shared, loaded CPU the threads spend most of their time waiting for each other.
    """
    import torch

    if device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def mode(name: str) -> Iterator[str]:
    """Temporarily switch ``WORKBOOK_MODE`` (used by tests)."""
    get_mode(name)  # validate
    old = os.environ.get("WORKBOOK_MODE")
    os.environ["WORKBOOK_MODE"] = name
    try:
        yield name
    finally:
        if old is None:
            os.environ.pop("WORKBOOK_MODE", None)
        else:
            os.environ["WORKBOOK_MODE"] = old


def describe() -> dict[str, str]:
    """Versions, device and mode: what the environment check in notebook 00 prints."""
    import platform
    from importlib import metadata

    info: dict[str, str] = {"python": platform.python_version(), "mode": get_mode()}
    # installed distributions' versions (lime, for one, has no __version__ attribute)
    for pkg, dist in (("torch", "torch"), ("transformers", "transformers"), ("shap", "shap"), ("lime", "lime"),
                      ("fairlearn", "fairlearn"), ("sklearn", "scikit-learn"), ("pandas", "pandas"),
                      ("numpy", "numpy")):
        try:
            info[pkg] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[pkg] = "missing"
    try:
        import torch

        dev = get_device()
        info["device"] = str(dev)
        if dev.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(dev)
        info["torch_build"] = torch_build_note(torch.version.cuda, dev.type)
        info["cpu_threads"] = str(torch.get_num_threads())
    except ImportError:
        info["device"] = "unknown (torch missing)"
    return info


def torch_build_note(cuda: str | None, device_type: str) -> str:
    """Which torch build is installed, and whether that fits the machine (a CUDA build without a GPU works, on the
    CPU, but carries a few GB of unused CUDA libraries)."""
    if not cuda:
        return "CPU build"
    if device_type == "cuda":
        return f"CUDA {cuda} build"
    return (f"CUDA {cuda} build, but no GPU here: it runs on the CPU (fine; the CPU build is a smaller "
            "install, see README)")


def _version_problems() -> list[str]:
    """Installed packages outside requirements.txt's ranges (:func:`helpers.install.version_problems`); on Colab
    its own Jupyter stack and ipywidgets 7 are expected and not listed."""
    from .install import COLAB_KEEP, ROOT, version_problems

    if not (ROOT / "requirements.txt").is_file():
        return []
    return version_problems(skip=COLAB_KEEP if on_colab() else ())


def on_colab() -> bool:
    """True inside Google Colab."""
    import sys

    return "google.colab" in sys.modules


def start(notebook: str, *, seed: int = 0, quiet: bool = True) -> dict[str, str]:
    """What every notebook's setup cell calls after making ``helpers`` importable.

    Seeds everything, limits CPU threads, silences known-harmless library warnings (so notebook
    output shows the lesson, not noise), sets readable plot defaults, and prints one line: the
    mode, the device and the expected run time. On a CPU-only Colab runtime it says how to switch
    to a GPU. Returns :func:`describe`'s dict.
    """
    import warnings

    if quiet:
        for module in ("transformers", "shap", "lime", "sklearn", "fairlearn", "torch", "tqdm", "IPython"):
            warnings.filterwarnings("ignore", module=module)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import matplotlib

        matplotlib.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
                                    "axes.spines.top": False, "axes.spines.right": False})
    except ImportError:  # pragma: no cover
        pass
    try:  # tables of sentences ("$0; capital loss: $2,392") must not be typeset as maths by MathJax
        import pandas as pd

        pd.set_option("display.html.use_mathjax", False)
    except ImportError:  # pragma: no cover
        pass
    seed_everything(seed)
    set_threads()
    info = describe()
    m = get_mode()
    expected = EXPECTED_MINUTES.get(notebook)
    when = f"; expected run time in {m} mode: about {expected[MODES.index(m)]:g} min" if expected else ""
    print(f"[{notebook}] mode={m} device={info.get('device')} torch={info.get('torch')} "
          f"({info.get('torch_build', '?')}){when}")
    out_of_range = _version_problems()
    if out_of_range:
        print(f"Outside the versions the workbook declares (requirements.txt): {'; '.join(out_of_range)}. "
              "`python3 -m helpers install` installs them (on Colab, the setup cell); then restart the kernel.")
    if on_colab() and info.get("device") == "cpu":
        print("This Colab runtime has no GPU. For the full-size runs choose Runtime > Change runtime type > "
              "T4 GPU, then run the notebook again (everything also works, smaller, on the CPU).")
    return info
