import os
import sys

import pytest
import torch

from helpers import config


def test_mode_table_has_a_value_per_mode():
    for key, row in config.SIZES.items():
        assert len(row) == len(config.MODES) == 3, key


def test_sizes_grow_from_smoke_to_gpu():
    # None means "all rows", the largest possible
    def as_num(v):
        return float("inf") if v is None else v

    for key, (smoke, cpu, gpu) in config.SIZES.items():
        if all(isinstance(v, (int, float)) or v is None for v in (smoke, cpu, gpu)) and not isinstance(smoke, bool):
            assert as_num(smoke) <= as_num(cpu) <= as_num(gpu) or key.endswith(("_lr", "_rate")), key


def test_mode_from_environment_and_default(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "cpu")
    assert config.get_mode() == "cpu"
    assert config.size("adult_train_rows") == config.SIZES["adult_train_rows"][1]
    monkeypatch.setenv("WORKBOOK_MODE", "SMOKE ")
    assert config.get_mode() == "smoke"
    monkeypatch.delenv("WORKBOOK_MODE")
    assert config.get_mode() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        config.get_mode()
    with pytest.raises(ValueError, match="Unknown run mode"):
        config.size("adult_train_rows", "turbo")


def test_unknown_size_key():
    with pytest.raises(ValueError, match="No size called"):
        config.size("no_such_knob")


def test_mode_context_restores(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    with config.mode("cpu"):
        assert config.get_mode() == "cpu"
    assert os.environ["WORKBOOK_MODE"] == "smoke"


def test_seed_everything_reproduces_torch_and_numpy():
    import numpy as np

    config.seed_everything(123)
    a = (torch.rand(5), np.random.rand(3))
    config.seed_everything(123)
    b = (torch.rand(5), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        config.seed_everything(-1)


def test_device_and_autocast_on_cpu():
    dev = config.get_device("cpu")
    assert dev.type == "cpu"
    assert config.autocast_dtype(dev) is None
    with config.autocast(dev):
        assert torch.ones(2).dtype == torch.float32


def test_every_notebook_has_an_expected_time():
    from helpers.workbook import notebooks

    for nb in notebooks():
        assert nb.stem in config.EXPECTED_MINUTES, f"add {nb.stem} to config.EXPECTED_MINUTES"


def test_environment_table_has_every_version_and_names_the_torch_build():
    from importlib import metadata

    from helpers.config import describe, torch_build_note

    info = describe()
    assert info["lime"] == metadata.version("lime") and info["sklearn"] == metadata.version("scikit-learn")
    assert torch_build_note(None, "cpu") == "CPU build"
    assert torch_build_note("12.6", "cuda") == "CUDA 12.6 build"
    assert "no GPU here" in torch_build_note("12.6", "cpu")


def test_sizes_table_keeps_integers_and_shows_none_as_all():
    from helpers.config import MODES, SIZES, sizes_table

    table = sizes_table()
    assert list(table.columns) == list(MODES) and list(table.index) == list(SIZES)
    for key, values in SIZES.items():
        for mode, value in zip(MODES, values):
            shown = table.loc[key, mode]
            assert shown == "all" if value is None else (shown == value and type(shown) is type(value))
    assert "3000.0" not in table.to_string() and "3000" in table.to_string()  # adult_train_rows in cpu mode


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's (Linux)")
def test_release_memory_returns_freed_heap_pages_to_the_system():
    """160 MB of 8 KB blocks from the C heap, written to, then freed behind a still-allocated fence block (so
    free() cannot shrink the heap by itself): the resident memory falls by most of it only after release_memory."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    blocks = [libc.malloc(8192) for _ in range(20_000)]
    fence = libc.malloc(8192)
    for b in blocks:
        ctypes.memset(b, 1, 8192)
    for b in blocks:
        libc.free(b)
    before = rss_mb()
    assert config.release_memory() is True
    after = rss_mb()
    libc.free(fence)
    assert before - after > 100, (before, after)
