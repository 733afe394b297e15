"""Benchmark: full fine-tuning of MiniLM on all Adult training rows, unconstrained and fairness-constrained.

This is the ``gpu``-mode recipe of notebooks 03 and 04 (2 epochs, AdamW, batch 64, lr 5e-5, bf16 autocast on a GPU),
run outside a notebook so that its numbers can be reproduced on any machine, and several seeds collected:

    python benchmarks/finetune_full.py                                  # every method below; seed 0
    python benchmarks/finetune_full.py --methods unconstrained --seeds 0 1 2 --json build/finetune_full.json
    python benchmarks/finetune_full.py --device cpu --train-rows 2000   # a quick look on a laptop
    python benchmarks/finetune_full.py --summarize s0.json s12.json --record   # pool earlier runs, no training
    python benchmarks/finetune_full.py --methods dp-mix threshold-dp --embeddings build/emb   # reuse a fine-tune

A full fine-tune takes about half an hour per seed on 2 CPU cores, so seeds may be run in separate invocations (each
with ``--json``) and pooled with ``--summarize``. ``--record`` stores the mean ± sd per method (as ``[mean, sd]``, sd
``None`` for one seed) and each run's intervals in ``build/results.json`` under ``benchmark_finetune_full``, next to
the notebooks' figures.

Methods: ``unconstrained``; ``dp`` / ``eo``: the Lagrangian constraint (DP <= 0.02, EO <= 0.03) during full
fine-tuning; ``dp-last`` / ``eo-last``: the same constraints on a new last layer trained on the embeddings of the
unconstrained fine-tuned encoder of the same seed (``fairness.constrained.train_last_layer``, the second stage of
``constrain_last_layer``; seconds after the fine-tune, which is shared); ``dp-mix`` / ``eo-mix``: that last layer as a
randomised mixture of its iterates and of 81 best responses to the Lagrangian, required to meet 0.015 (DP) / 0.01
(EO) on the training embeddings (``randomized=True, mixture_delta=..., best_responses=81``; decisions sampled with
the run's seed). Baselines on the same embeddings, by name only (ExponentiatedGradient takes minutes on a CPU):
``expgrad-dp`` / ``expgrad-eo`` (fairlearn's ExponentiatedGradient with ``difference_bound`` 0.015 / 0.01, the bound
each mixture is held to) and ``threshold-dp`` / ``threshold-eo`` (ThresholdOptimizer).

``--embeddings DIR`` saves each seed's fine-tuned train/test embeddings (with the recipe that made them) and, when the
``unconstrained`` row is not asked for, reuses them: new last layers or baselines then cost seconds or minutes, not a
fine-tune (``--methods dp-mix expgrad-dp --seeds 0 1 2 --embeddings build/emb``).

Each run prints and records: test accuracy, demographic-parity and equalized-odds differences (sex) on the official
test file with their 95 % bootstrap intervals over test rows (``dp_low``/``dp_high``, ``eo_low``/``eo_high``;
``helpers.fairness.metrics.gap_interval``: how precisely this test set pins the gap down), the share predicted
positive (overall and per sex: did the gap close by levelling down?), training examples per second, seconds per epoch
and the final multiplier.

Targets (issues 4 and 5): fine-tuned accuracy >= 0.865; DP difference <= 0.02 at accuracy >= 0.845; EO difference
<= 0.03 at accuracy >= 0.855; one epoch <= 5 s on an H100.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: method name -> (fine_tune_fair method, constraint, delta)
METHODS = {"unconstrained": ("unconstrained", "dp", 0.0), "dp": ("lagrangian", "dp", 0.02),
           "eo": ("lagrangian", "eo", 0.03)}
#: last-layer methods -> train_last_layer arguments: the unconstrained fine-tune of the same seed, then a new head
LAST_LAYER = {"dp-last": dict(constraint="dp", delta=0.02), "eo-last": dict(constraint="eo", delta=0.03),
              "dp-mix": dict(constraint="dp", delta=0.02, randomized=True, mixture_delta=0.015, best_responses=81),
              "eo-mix": dict(constraint="eo", delta=0.03, randomized=True, mixture_delta=0.01,
                            best_responses=81)}
#: fairlearn baselines on the same fine-tuned embeddings -> (fit_predict method, constraint, difference_bound): the
#: bound each mixture above is held to on the training embeddings
BASELINES = {"expgrad-dp": ("expgrad", "dp", 0.015), "expgrad-eo": ("expgrad", "eo", 0.01),
             "threshold-dp": ("threshold", "dp", None), "threshold-eo": ("threshold", "eo", None)}
ON_EMBEDDINGS = {**LAST_LAYER, **BASELINES}
#: where --record stores the summary in build/results.json
SECTION = "benchmark_finetune_full"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=[*METHODS, *LAST_LAYER], choices=[*METHODS, *ON_EMBEDDINGS],
                    help="default: every fine-tuning and last-layer method; add the fairlearn baselines by name")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--train-rows", type=int, default=None, help="subsample the training split (default: all)")
    ap.add_argument("--test-rows", type=int, default=None, help="subsample the test split (default: all)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--dual-lr", type=float, default=0.1)
    ap.add_argument("--temperature", type=float, default=1.0, help="surrogate on sigmoid(z / T) (LagrangianConstraint)")
    ap.add_argument("--stratify", action="store_true", help="constrained runs: batches stratified by sex x label")
    ap.add_argument("--last-temperature", type=float, default=None,
                    help="last-layer methods: surrogate temperature of the head (default: train_last_layer's)")
    ap.add_argument("--expgrad-iter", type=int, default=50, help="ExponentiatedGradient's max_iter (baselines)")
    ap.add_argument("--embeddings", default=None, metavar="DIR",
                    help="save each seed's fine-tuned embeddings here, and reuse them when the unconstrained "
                         "fine-tune itself is not asked for (last layers in seconds, baselines in minutes)")
    ap.add_argument("--json", default=None, help="write every run (and the mean/sd table) here")
    ap.add_argument("--summarize", nargs="+", default=None, metavar="JSON",
                    help="train nothing: pool the runs of earlier --json files and summarise them")
    ap.add_argument("--record", action="store_true",
                    help=f"store the summary in build/results.json under {SECTION!r}")
    args = ap.parse_args(argv)
    if args.summarize:
        runs = load_runs(args.summarize)
        summarize(runs, json_path=args.json, record_results=args.record, args=vars(args))
        return 0

    import numpy as np

    from helpers.config import get_device, mode
    from helpers.data import adult_splits, serialize_frame, subsample
    from helpers.fairness import constrained as fc
    from helpers.fairness.metrics import gap_interval
    from helpers.models import encode
    from helpers.training import predict_proba

    dev = get_device(args.device)
    with mode("gpu"):  # the full splits, whatever WORKBOOK_MODE says (adult_splits reads the mode's row counts)
        splits = adult_splits(seed=0)
    train = subsample(splits.train, args.train_rows, seed=0)
    test = subsample(splits.test, args.test_rows, seed=0)
    texts, labels = serialize_frame(train), train["label"].to_numpy()
    groups, group_names = fc.encode_groups(train["sex"])
    test_texts, y_test, sex_test = serialize_frame(test), test["label"].to_numpy(), test["sex"].astype(str).to_numpy()
    print(f"{len(train):,} training rows, {len(test):,} test rows; device {dev}; "
          f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g}")
    recipe = {"train_rows": len(train), "test_rows": len(test), "epochs": args.epochs, "batch_size": args.batch_size,
              "lr": args.lr}

    def row(method, seed, pred, **extra):
        rep = fc.decision_report(y_test, pred, sex_test)
        ci = {m: gap_interval(y_test, pred, sensitive_features=sex_test, metric=m, seed=seed) for m in ("dp", "eo")}
        return {"method": method, "seed": seed, "device": str(dev), "train_rows": len(train), "test_rows": len(test),
                "accuracy": rep["accuracy"], "dp_difference": rep["dp"], "eo_difference": rep["eo"],
                **{f"{m}_{end}": getattr(c, end) for m, c in ci.items() for end in ("low", "high")},
                **{k: v for k, v in rep.items() if k not in ("accuracy", "dp", "eo")}, **extra}

    def show(run):
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.items()), flush=True)

    def on_embeddings(seed, E, E_test, encode_s):
        """The last-layer methods and the fairlearn baselines on this seed's fine-tuned embeddings."""
        same = None
        for m in (m for m in args.methods if m in ON_EMBEDDINGS):
            t0 = time.perf_counter()
            if m in LAST_LAYER:
                head = fc.train_last_layer(E, labels, groups, **LAST_LAYER[m], temperature=args.last_temperature,
                                           seed=seed, device=dev)
                pred, lam = head.predict(E_test, random_state=seed), head.hook.lam
            else:
                if same is None:
                    g_test = np.array([group_names.index(v) for v in sex_test])
                    same = fc.FairData(E, labels, groups, E_test, y_test, g_test, group_names)
                kind, constraint, bound = BASELINES[m]
                pred, lam = fc.fit_predict(same, kind, constraint=constraint, param=bound, seed=seed,
                                           expgrad_iter=args.expgrad_iter)[0], None
            runs.append(row(m, seed, pred, examples_per_second=float("nan"), seconds_per_epoch=float("nan"),
                            wall_seconds=encode_s + time.perf_counter() - t0, final_multiplier=lam))
            show(runs[-1])

    on_emb = any(m in ON_EMBEDDINGS for m in args.methods)
    runs = []
    for seed in args.seeds:
        saved = None
        if on_emb and args.embeddings and "unconstrained" not in args.methods:
            saved = load_embeddings(args.embeddings, seed, recipe)
            if saved is not None:
                print(f"seed {seed}: fine-tuned embeddings from {args.embeddings}", flush=True)
                on_embeddings(seed, *saved, 0.0)
        for method, (kind, constraint, delta) in METHODS.items():
            if method not in args.methods and not (method == "unconstrained" and on_emb and saved is None):
                continue  # the unconstrained fine-tune also runs when the last layer needs its embeddings
            t0 = time.perf_counter()
            res, hook = fc.fine_tune_fair(texts, labels, groups, method=kind, constraint=constraint, delta=delta,
                                          dual_lr=args.dual_lr, temperature=args.temperature,
                                          stratify=args.stratify and kind != "unconstrained", lr=args.lr,
                                          epochs=args.epochs, batch_size=args.batch_size, seed=seed, device=dev)
            wall = time.perf_counter() - t0
            if method in args.methods:
                p = predict_proba(res.model, res.tokenizer, test_texts, batch_size=512 if dev.type == "cuda" else 64)
                runs.append(row(method, seed, (p[:, 1] >= 0.5).astype(int),
                                examples_per_second=float(res.examples_per_second),
                                seconds_per_epoch=float(np.mean([h["seconds"] for h in res.history])),
                                wall_seconds=wall, final_multiplier=getattr(hook, "lam", None)))
                show(runs[-1])
            if method == "unconstrained" and on_emb:  # constrained last layer and baselines on this encoder
                t0 = time.perf_counter()
                E, E_test = (encode(t, res.model.encoder, res.tokenizer, progress=False) for t in (texts, test_texts))
                if args.embeddings:
                    save_embeddings(args.embeddings, seed, recipe, E, E_test)
                on_embeddings(seed, E, E_test, time.perf_counter() - t0)
            del res

    summarize(runs, json_path=args.json, record_results=args.record, args=vars(args))
    return 0


def _embedding_paths(folder: str, seed: int) -> tuple[Path, Path, Path]:
    base = Path(folder) / f"seed{seed}"
    return base.with_suffix(".train.npy"), base.with_suffix(".test.npy"), base.with_suffix(".json")


def save_embeddings(folder: str, seed: int, recipe: dict, E, E_test) -> None:
    """Store one seed's fine-tuned train/test embeddings, (n, H) float32, with the recipe that made them."""
    import numpy as np

    train_p, test_p, meta_p = _embedding_paths(folder, seed)
    train_p.parent.mkdir(parents=True, exist_ok=True)
    np.save(train_p, np.asarray(E, dtype=np.float32))
    np.save(test_p, np.asarray(E_test, dtype=np.float32))
    meta_p.write_text(json.dumps({"seed": seed, **recipe}))


def load_embeddings(folder: str, seed: int, recipe: dict):
    """One seed's saved embeddings ``(E, E_test)``, or ``None`` if there are none; a different recipe is an error."""
    import numpy as np

    train_p, test_p, meta_p = _embedding_paths(folder, seed)
    if not (train_p.exists() and test_p.exists() and meta_p.exists()):
        return None
    meta = json.loads(meta_p.read_text())
    diff = {k: (meta.get(k), v) for k, v in recipe.items() if meta.get(k) != v}
    if diff:
        raise ValueError(f"--embeddings: {meta_p} was made with another recipe (saved, now): {diff}; use another "
                         "folder or drop the options that differ.")
    E, E_test = np.load(train_p), np.load(test_p)
    if (len(E), len(E_test)) != (recipe["train_rows"], recipe["test_rows"]):
        raise ValueError(f"--embeddings: {train_p} holds {len(E)} / {len(E_test)} rows, expected "
                         f"{recipe['train_rows']} / {recipe['test_rows']}.")
    return E, E_test


def load_runs(paths: list[str]) -> list[dict]:
    """The runs of earlier ``--json`` files, pooled; the same (method, seed) twice is an error, not averaged twice."""
    runs, seen = [], {}
    for path in paths:
        if not Path(path).exists():
            raise ValueError(f"--summarize: {path} does not exist (write it with --json first).")
        for r in json.loads(Path(path).read_text())["runs"]:
            key = (r["method"], r["seed"])
            if key in seen:
                raise ValueError(f"--summarize: {r['method']} seed {r['seed']} is in both {seen[key]} and {path}; "
                                 "pool each run once.")
            seen[key] = path
            runs.append(r)
    if not runs:
        raise ValueError(f"--summarize: no runs in {', '.join(paths)}.")
    sizes = {(r["train_rows"], r["test_rows"]) for r in runs}
    if len(sizes) > 1:
        raise ValueError(f"--summarize: the files mix data sizes {sorted(sizes)} (train rows, test rows); "
                         "pool runs of one recipe only.")
    return runs


def summarize(runs: list[dict], *, json_path: str | None = None, record_results: bool = False,
              args: dict | None = None) -> "pd.DataFrame":
    """Print mean ± sd over seeds per method; optionally write ``json_path`` and record in ``build/results.json``."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(runs)
    cols = ["accuracy", "dp_difference", "eo_difference", "share_predicted_positive", "wall_seconds",
            *[c for c in frame.columns if c.startswith("selection_")], "examples_per_second", "seconds_per_epoch"]
    grouped = frame.groupby("method")[cols]
    mean, sd = grouped.mean(), grouped.std(ddof=1)  # NaN for a single seed: its spread is not measured

    def cell(m: float, s: float) -> str:
        return "n/a" if np.isnan(m) else f"{m:.3f} ± " + ("n/a" if np.isnan(s) else f"{s:.3f}")

    table = pd.DataFrame({c: [cell(m, s) for m, s in zip(mean[c], sd[c])] for c in cols}, index=mean.index)
    seeds = {m: sorted(int(s) for s in part["seed"]) for m, part in frame.groupby("method")}
    print("mean ± sd over seeds " + "; ".join(f"{m}: {s}" for m, s in seeds.items()) + ":")
    print(table.to_string())
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"runs": runs, "args": args or {}}, indent=1))
        print(f"wrote {json_path}")
    if record_results:  # one write that replaces the section: keys of an earlier, different run do not linger
        from helpers.results import record_section, results_path

        figures = {"devices": sorted({str(r["device"]) for r in runs}), "train_rows": int(frame["train_rows"].iloc[0]),
                   "test_rows": int(frame["test_rows"].iloc[0])}
        for method in mean.index:
            figures[f"{method}.seeds"] = seeds[method]
            for c in cols:
                m, s = float(mean.loc[method, c]), float(sd.loc[method, c])
                if not np.isnan(m):
                    figures[f"{method}.{c}"] = [round(m, 4), None if np.isnan(s) else round(s, 4)]
            figures[f"{method}.intervals_95"] = {  # runs written before the intervals existed have none
                str(r["seed"]): {g: [round(r[f"{g}_low"], 4), round(r[f"{g}_high"], 4)] for g in ("dp", "eo")}
                for r in runs if r["method"] == method and "eo_low" in r}
        record_section(SECTION, figures)
        print(f"recorded under {SECTION!r} in {results_path()}")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
