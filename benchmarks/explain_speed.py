"""Benchmark: how fast the notebook-06 explanations run (not a test; prints a table, writes JSON).

    python benchmarks/explain_speed.py --device cpu --json benchmarks/results/explain_speed_cpu.json
    python benchmarks/explain_speed.py                      # this machine's best device, GPU sizes on a GPU
    python benchmarks/explain_speed.py --device cpu --skip-stock --agree 0      # ours only
    python benchmarks/explain_speed.py --device cpu --quick     # every row at toy sizes: checks that it runs

Rows (cold = first call in this process, warm = median of --repeats later calls): the first SHAP explanation
(after ``explain.warm_up()`` started at process start, and in a fresh subprocess without it, fp32 and, where the
CPU has bf16 instructions, bf16), the naive loop (one text per forward), batched strings (tokenize + forward),
token ids (perturb + forward), the forward pass alone, LIME and SHAP Partition on token ids with the fp32 model
and (on a CPU) at the lower precisions (``BatchedPredictor(cpu_precision="int8")``, and ``"bf16"`` where
``explain.cpu_has_bf16()``), and the stock ``LimeTextExplainer`` and ``shap.maskers.Text`` (its default
batch of 5) on strings. Ratios: stock warm time / ours. Speed model: the bundled MiniLM with a random head.

Agreement (``--agree N``, CPU only): MiniLM fine-tuned on ``--finetune-rows`` Adult sentences (seed 0), then on
N test sentences, for each lower precision: max |p - p_fp32| and the Spearman correlation of its LIME
(``--agree-lime`` samples, same seed) and SHAP (``--agree-shap`` evals) attributions with fp32's
(:func:`helpers.explain.compare_predictors`, :func:`helpers.explain.precision_summary`).
The JSON is labelled with the machine (host, CPU, cores, torch threads, GPU) and the UTC date.
Targets (issue 26, 2 idle cores): LIME-1000 <= 3 s and >= 2.5x stock; SHAP-500 <= 1.5 s and >= 2.5x stock;
first explanation <= 3 s; lower precision vs fp32 max |dp| <= 0.02 and attribution Spearman >= 0.95.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_FRESH = """
import sys, time; sys.path.insert(0, {root!r})
from helpers import explain as ex
from helpers.config import set_threads
from helpers.data import load_adult, serialize
from helpers.models import load_classifier, load_tokenizer
set_threads({threads})
p = ex.BatchedPredictor(load_classifier(device="cpu"), load_tokenizer(), device="cpu", batch_size={batch},
                        cpu_precision={precision!r})
m = p.masked(serialize(load_adult("test").iloc[0]), label=1)
t0 = time.perf_counter(); ex.shap_explain(m, max_evals={evals}); print(time.perf_counter() - t0)
"""


def machine(dev, torch) -> dict:
    """Where and when the numbers were measured."""
    from helpers.explain import cpu_has_bf16

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name")) or cpu
    except (OSError, StopIteration):
        pass
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "cpu_bf16_instructions": cpu_has_bf16(),
            "device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "",
            "torch": torch.__version__, "python": platform.python_version()}


def agreement(args, tok, dev, precisions, n_sentences: int) -> dict:
    """Each lower precision vs fp32 on a fine-tuned MiniLM: probabilities and LIME/SHAP attributions on the first
    ``n_sentences`` test sentences, one dict per precision."""
    from helpers import explain as ex
    from helpers.data import adult_splits, serialize_frame, subsample
    from helpers.training import fine_tune

    splits = adult_splits(seed=0)
    train = subsample(splits.train, args.finetune_rows, seed=0)
    run = fine_tune(serialize_frame(train), train["label"].to_numpy(), epochs=1, seed=0, device=dev, progress=False)
    fp32 = ex.BatchedPredictor(run.model, tok, device=dev, batch_size=args.batch_size or 64)
    texts = serialize_frame(splits.test.iloc[:n_sentences])
    table = ex.compare_predictors(fp32, {name: fp32.at_precision(name) for name in precisions}, texts, label=1,
                                  num_samples=args.agree_lime, max_evals=args.agree_shap, progress=False)
    summary = ex.precision_summary(table)
    out = {}
    for name, g in table.groupby("candidate", sort=False):
        out[name] = {"sentences": len(texts), "finetune_rows": args.finetune_rows, "lime_samples": args.agree_lime,
                     "shap_evals": args.agree_shap, "max_abs_dp": float(g["max_abs_dp"].max()),
                     "lime_spearman_mean": float(g["lime_spearman"].mean()),
                     "lime_spearman_min": float(g["lime_spearman"].min()),
                     "shap_spearman_mean": float(g["shap_spearman"].mean()),
                     "shap_spearman_min": float(g["shap_spearman"].min()),
                     "fp32_over_this_time": float(summary.loc[name, "speedup"]),
                     "within_tolerance": bool(summary.loc[name, "within_tolerance"])}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--texts", type=int, default=None, help="perturbed texts per batch call (default 5000 GPU / 1000 CPU)")
    ap.add_argument("--lime", type=int, default=None, help="LIME samples (default 5000 GPU / 1000 CPU)")
    ap.add_argument("--shap", type=int, default=500, help="SHAP Partition max_evals")
    ap.add_argument("--naive", type=int, default=None, help="texts for the one-at-a-time loop (default 1000 GPU / 50 CPU)")
    ap.add_argument("--global-n", type=int, default=None, help="sentences for the global SHAP run (default 1000 GPU / 0 CPU)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-stock", action="store_true", help="skip the slow stock lime/shap string paths")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-subprocess first explanation")
    ap.add_argument("--agree", type=int, default=None, help="sentences for int8 vs fp32 agreement (default 20 CPU / 0 GPU)")
    ap.add_argument("--finetune-rows", type=int, default=300, help="Adult rows the agreement model is fine-tuned on")
    ap.add_argument("--agree-lime", type=int, default=500, help="LIME samples per agreement explanation")
    ap.add_argument("--agree-shap", type=int, default=300, help="SHAP evals per agreement explanation")
    ap.add_argument("--quick", action="store_true",
                    help="toy sizes for every row (200 texts, LIME 100, SHAP 50, 2 agreement sentences on a model "
                         "fine-tuned on 32 rows): checks that the benchmark runs; its numbers mean nothing")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        for name, value in (("texts", 200), ("lime", 100), ("shap", 50), ("naive", 5), ("agree", 2),
                            ("finetune_rows", 32), ("agree_lime", 40), ("agree_shap", 30), ("repeats", 1)):
            if getattr(args, name) == ap.get_default(name):
                setattr(args, name, value)

    from helpers import explain as ex

    t_start = time.perf_counter()
    warm = ex.warm_up(background=True)  # as notebook 06 does: the one-off shap/numba work starts at once

    import numpy as np
    import torch

    from helpers.config import get_device, set_threads
    from helpers.data import load_adult, serialize, serialize_frame
    from helpers.models import load_classifier, load_tokenizer

    set_threads(args.threads)
    dev = get_device(args.device)
    gpu = dev.type == "cuda"
    n_texts = args.texts or (5000 if gpu else 1000)
    n_lime = args.lime or (5000 if gpu else 1000)
    n_naive = args.naive or (1000 if gpu else 50)
    n_global = args.global_n if args.global_n is not None else (1000 if gpu else 0)
    n_agree = args.agree if args.agree is not None else (0 if gpu else 20)
    batch = args.batch_size or (512 if gpu else 64)

    timed = functools.partial(ex.time_call, repeats=args.repeats)  # cold + median warm, CUDA-synchronised

    tok = load_tokenizer()
    model = load_classifier(device=dev).eval()
    predictors = {"fp32": ex.BatchedPredictor(model, tok, device=dev, batch_size=batch, class_names=["<=50K", ">50K"])}
    if not gpu:
        predictors["int8"] = predictors["fp32"].at_precision("int8")
        if ex.cpu_has_bf16():
            predictors["bf16"] = predictors["fp32"].at_precision("bf16")
    p = predictors["fp32"]
    test = load_adult("test")
    text = serialize(test.iloc[0])
    m = p.masked(text, label=">50K")
    n_tokens = int(m.input_ids.shape[0])
    rows: dict[str, dict] = {}
    first = "bf16" if "bf16" in predictors else "fp32"  # the fastest precision within tolerance on a CPU
    m_first = predictors[first].masked(text, label=">50K")
    rows[f"first SHAP explanation (warm_up() at process start), {first}"] = timed(
        lambda: ex.shap_explain(m_first, max_evals=args.shap), repeats=0)
    warm_s = time.perf_counter() - t_start
    for name in (("fp32", "bf16") if "bf16" in predictors else ("fp32",)) if not args.no_fresh and not gpu else ():
        code = _FRESH.format(root=str(ROOT), threads=torch.get_num_threads(), batch=batch, evals=args.shap,
                             precision=name)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows[f"first SHAP explanation, fresh process, no warm-up, {name}"] = {"cold_s": float(out.stdout.split()[-1]),
                                                                           "warm_s": float("nan")}
    keep = np.random.default_rng(0).random((n_texts, m.n_words)) > 0.5
    strings = m.texts(keep)
    rows[f"naive loop, {n_naive} texts"] = timed(lambda: p.predict_one_at_a_time(strings[:n_naive]), repeats=1)
    rows[f"batched strings, {n_texts} texts"] = timed(lambda: p(strings))
    rows[f"tokenising {n_texts} strings"] = timed(lambda: p.tokenize(strings))
    for name, q in predictors.items():
        mq = q.masked(text, label=">50K")
        ids, lengths = mq.token_ids(keep)
        rows[f"token ids, {n_texts} texts, {name}"] = timed(lambda mq=mq: mq(keep))
        rows[f"forward only, {n_texts} texts, {name}"] = timed(lambda q=q, ids=ids, lengths=lengths: q.logits_from_ids(ids, lengths))
        rows[f"LIME {n_lime} samples, token ids, {name}"] = timed(lambda mq=mq: ex.lime_explain(mq, num_samples=n_lime))
        rows[f"SHAP Partition {args.shap} evals, token ids, {name}"] = timed(lambda mq=mq: ex.shap_explain(mq, max_evals=args.shap))
    ratios = {}
    if not args.skip_stock:
        stock_lime = f"LIME {n_lime} samples, stock LimeTextExplainer (strings, fp32)"
        stock_shap = f"SHAP {args.shap} evals, stock shap.maskers.Text (strings, batch 5, fp32)"
        rows[stock_lime] = timed(lambda: ex.lime_explain_strings(p, text, label=">50K", num_samples=n_lime), repeats=1)
        rows[stock_shap] = timed(lambda: ex.shap_explain_strings(p, text, label=">50K", max_evals=args.shap), repeats=1)
        for name in predictors:
            ratios[f"LIME: stock / ours {name}"] = (rows[stock_lime]["warm_s"]
                                                   / rows[f"LIME {n_lime} samples, token ids, {name}"]["warm_s"])
            ratios[f"SHAP: stock / ours {name}"] = (rows[stock_shap]["warm_s"]
                                                   / rows[f"SHAP Partition {args.shap} evals, token ids, {name}"]["warm_s"])
    for name in predictors:
        if name != "fp32":
            ratios[f"forward: fp32 / {name}"] = (rows[f"forward only, {n_texts} texts, fp32"]["warm_s"]
                                                 / rows[f"forward only, {n_texts} texts, {name}"]["warm_s"])
    if n_global:
        texts = serialize_frame(test.iloc[:n_global])
        rows[f"SHAP {args.shap} evals x {n_global} sentences"] = timed(
            lambda: ex.explain_many(p, texts, label=">50K", max_evals=args.shap, progress=False), repeats=0)
    lower = [name for name in predictors if name != "fp32"]
    agree = agreement(args, tok, dev, lower, n_agree) if n_agree and lower else {}
    key = f"token ids, {n_texts} texts, fp32"
    info = machine(dev, torch) | {"tokens": n_tokens, "words": m.n_words, "batch_size": batch,
                                  "warm_up_and_first_explanation_s": warm_s, "warm_up_thread": warm is not None,
                                  "texts_per_s_token_ids": n_texts / rows[key]["warm_s"],
                                  "total_s": time.perf_counter() - t_start}
    print(f"{info['date_utc']} UTC, {info['host']}: {info['cpu']} ({info['cores']} cores, {info['threads']} torch "
          f"threads, 1-min load {info['load_average_1min']}) {info['gpu']}; sentence: {n_tokens} tokens, {m.n_words} words")
    print(f"{'what':62s} {'cold s':>9s} {'warm s':>9s}")
    for k, r in rows.items():
        print(f"{k:62s} {r['cold_s']:9.3f} {r['warm_s']:9.3f}")
    for k, v in ratios.items():
        print(f"{k:62s} {v:9.2f}x")
    for name, values in agree.items():
        for k, v in values.items():
            print(f"agreement {name} vs fp32: {k:39s} {v:9.4g}")
    print(f"token-id throughput (warm, fp32): {info['texts_per_s_token_ids']:,.0f} texts/s; total {info['total_s']:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows, "ratios": ratios, "agreement": agree},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
