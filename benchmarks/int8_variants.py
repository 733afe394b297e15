"""Benchmark: which int8 scheme keeps a fine-tuned MiniLM's probabilities within 0.02 of fp32 (not a test).

    python benchmarks/int8_variants.py                 # notebook 06's cpu-mode model (600 rows, 2 epochs, seed 0)
    python benchmarks/int8_variants.py --quick         # a 32-row model, few texts: checks that it runs

The model is fine-tuned as notebook 06 does in cpu mode (``--rows`` Adult sentences, ``--epochs``, ``--seed``).
For each scheme: max |p_int8 - p_fp32| over the first ``--texts`` test sentences and over ``--perturbed`` masked
versions of each of the first 5 (LIME-like: each word kept with a random per-sample probability), then the fp32 / int8
forward time, measured interleaved (fp32 and each scheme in turn, ``--repeats`` rounds, median) on 256 masked
versions of one sentence. Schemes (all ``nn.Linear`` layers):

* ``per-tensor``: ``quantize_dynamic`` with one weight scale per matrix (torch's default qconfig);
* ``per-channel``: one weight scale per output row (``per_channel_dynamic_qconfig``; what
  ``helpers.explain.quantize_for_cpu`` does);
* ``per-channel, 8-bit activations``: the same kernels without fbgemm's ``reduce_range`` (7-bit activations),
  safe only on CPUs with VNNI; set through the module's ``version`` attribute, an internal of torch.ao;
* ``SmoothQuant a=...`` (Xiao et al. 2023, ICML, arXiv 2211.10438): per input channel j,
  ``s_j = max|X_j|^a / max|W_j|^(1-a)`` from one calibration batch (the last 64 test sentences),
  ``W[:, j] *= s_j`` and the input divided by ``s_j`` in a module before the Linear (BERT is post-LN: the
  LayerNorm's output also feeds the residual, so the division cannot be folded into it); the smoothed fp32
  model is checked against the original before quantising (printed);
* ``per-token``: each token's activations quantised with its own scale, per-row int8 weights, ``torch._int_mm``.

The JSON (``--json``) is labelled with the machine, date and load: on a shared, loaded machine only the
ratios of interleaved runs mean anything.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--texts", type=int, default=20)
    ap.add_argument("--perturbed", type=int, default=100, help="masked versions of each of the first 5 sentences")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="32 rows, 1 epoch, 4 texts, 10 perturbed, 2 repeats")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.texts, args.perturbed, args.repeats = 32, 1, 4, 10, 2
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)

    import numpy as np
    import torch
    from explain_speed import machine
    from torch import nn
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    from helpers import explain as ex
    from helpers.config import set_threads
    from helpers.data import adult_splits, serialize_frame, subsample
    from helpers.training import fine_tune

    set_threads(None)
    splits = adult_splits(seed=args.seed)
    train = subsample(splits.train, args.rows, seed=args.seed)
    run = fine_tune(serialize_frame(train), train["label"].to_numpy(), epochs=args.epochs, seed=args.seed,
                    device="cpu", progress=False)
    model, tok = run.model.eval(), run.tokenizer
    test = serialize_frame(splits.test)
    texts = test[: args.texts]
    calib = test[-64:] if len(test) >= 64 + len(texts) else texts  # SmoothQuant's calibration batch

    def predictor(m):
        return ex.BatchedPredictor(m, tok, device="cpu", batch_size=64)

    fp32 = predictor(model)
    rng = np.random.default_rng(args.seed)
    perturbed = []
    for t in texts[:5]:
        m = fp32.masked(t, label=1)
        perturbed += m.texts(rng.random((args.perturbed, m.n_words)) > rng.random((args.perturbed, 1)))

    def linears(m):
        return {n: mod for n, mod in m.named_modules() if isinstance(mod, nn.Linear)}

    def replace(m, name, new):
        parent, _, child = name.rpartition(".")
        setattr(m.get_submodule(parent) if parent else m, child, new)

    def dynamic(m, qconfig, full_range=False):
        q = quantize_dynamic(copy.deepcopy(m), {nn.Linear: qconfig}, dtype=torch.qint8)
        if full_range:  # version < 4: linear_dynamic without reduce_range
            for mod in q.modules():
                if hasattr(mod, "_packed_params") and hasattr(mod, "version"):
                    mod.version = 3
        return q

    class Divide(nn.Module):
        def __init__(self, s):
            super().__init__()
            self.register_buffer("inv", 1.0 / s)

        def forward(self, x):
            return x * self.inv

    def smooth(m, alpha):
        m = copy.deepcopy(m)
        amax, hooks = {}, []
        for n, mod in linears(m).items():
            def hook(_, inp, n=n):
                a = inp[0].detach().abs().reshape(-1, inp[0].shape[-1]).amax(0)
                amax[n] = torch.maximum(amax[n], a) if n in amax else a
            hooks.append(mod.register_forward_pre_hook(hook))
        predictor(m)(calib)
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for n, mod in linears(m).items():
                s = (amax[n].clamp(min=1e-5) ** alpha / mod.weight.abs().amax(0).clamp(min=1e-5) ** (1 - alpha))
                mod.weight.mul_(s.clamp(min=1e-5))
                replace(m, n, nn.Sequential(Divide(s.clamp(min=1e-5)), mod))
        return m

    class PerToken(nn.Module):
        def __init__(self, lin):
            super().__init__()
            w = lin.weight.detach()
            self.register_buffer("sw", w.abs().amax(1).clamp(min=1e-8) / 127)
            self.register_buffer("wq", (w / self.sw[:, None]).round().to(torch.int8).t().contiguous())
            self.register_buffer("b", lin.bias.detach().clone())

        def forward(self, x):
            x2 = x.reshape(-1, x.shape[-1])
            sx = x2.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127
            xq = (x2 / sx).round_().to(torch.int8)
            pad = max(0, 17 - xq.shape[0])  # _int_mm needs more than 16 rows
            y = torch._int_mm(nn.functional.pad(xq, (0, 0, 0, pad)), self.wq)[: x2.shape[0]]
            return torch.addcmul(self.b, y.float(), sx * self.sw).reshape(*x.shape[:-1], -1)

    def per_token(m):
        m = copy.deepcopy(m)
        for n, mod in linears(m).items():
            replace(m, n, PerToken(mod))
        return m

    smoothed = {a: smooth(model, a) for a in (0.5, 0.75)}
    smooth_check = {a: float(np.abs(predictor(s)(texts) - fp32(texts)).max()) for a, s in smoothed.items()}
    print("smoothed fp32 vs fp32, max |dp| (must be float rounding):", smooth_check)
    schemes = {"per-tensor": dynamic(model, default_dynamic_qconfig),
               "per-channel": dynamic(model, per_channel_dynamic_qconfig),
               "per-channel, 8-bit activations": dynamic(model, per_channel_dynamic_qconfig, full_range=True),
               **{f"SmoothQuant a={a} + per-channel": dynamic(s, per_channel_dynamic_qconfig)
                  for a, s in smoothed.items()},
               "per-token (torch._int_mm)": per_token(model)}
    ref_t, ref_p = fp32(texts), fp32(perturbed)
    rows = {}
    for name, q in schemes.items():
        p = predictor(q)
        rows[name] = {"max_abs_dp_texts": float(np.abs(p(texts) - ref_t).max()),
                      "max_abs_dp_perturbed": float(np.abs(p(perturbed) - ref_p).max())}
    masked = {name: predictor(q).masked(texts[0], label=1) for name, q in {"fp32": model, **schemes}.items()}
    keep = np.random.default_rng(1).random((256, masked["fp32"].n_words)) > 0.5
    seconds = {name: [] for name in masked}
    for _ in range(args.repeats):
        for name, m in masked.items():
            t0 = time.perf_counter()
            m(keep)
            seconds[name].append(time.perf_counter() - t0)
    for name in schemes:
        rows[name]["fp32_over_int8_time"] = float(np.median(seconds["fp32"]) / np.median(seconds[name]))
    info = machine(torch.device("cpu"), torch) | {"rows": args.rows, "epochs": args.epochs, "seed": args.seed,
                                                  "texts": len(texts), "perturbed": len(perturbed),
                                                  "smoothed_fp32_max_abs_dp": smooth_check}
    print(f"{info['date_utc']} UTC, {info['cpu']} ({info['cores']} cores, 1-min load {info['load_average_1min']}); "
          f"model: {args.rows} rows, {args.epochs} epochs, seed {args.seed}")
    print(f"{'scheme':34s} {'max|dp| texts':>14s} {'max|dp| perturbed':>18s} {'fp32/int8 time':>15s}")
    for name, r in rows.items():
        print(f"{name:34s} {r['max_abs_dp_texts']:14.4f} {r['max_abs_dp_perturbed']:18.4f} "
              f"{r['fp32_over_int8_time']:14.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
