"""Benchmark: how fast the notebook-06 explanations run (not a test; prints a table, writes JSON).

    python benchmarks/explain_speed.py                      # defaults: this machine's best device
    python benchmarks/explain_speed.py --device cpu --texts 1000 --lime 1000 --shap 500 --global-n 0
    python benchmarks/explain_speed.py --json build/explain_speed.json

Rows (cold = first call in this process, warm = median of --repeats later calls):
  naive loop (one text per forward), batched strings (tokenize + forward), token ids on the device
  (perturb + forward + copy back), LIME token ids vs the stock LimeTextExplainer on strings, SHAP Partition
  with the word masker vs the stock shap.maskers.Text (default batch of 5), and (--global-n) SHAP over many
  test sentences. Model: the bundled MiniLM with a classification head (random head: speed only).
Targets on an H100 (issue 7): >= 150,000 texts/s on token ids at ~40 tokens; LIME-5000 <= 0.25 s;
SHAP-500 <= 0.1 s; first explanation in a fresh process <= 3 s; 1,000 SHAP explanations <= 60 s.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--texts", type=int, default=None, help="perturbed texts per batch call (default 5000 GPU / 1000 CPU)")
    ap.add_argument("--lime", type=int, default=None, help="LIME samples (default 5000 GPU / 1000 CPU)")
    ap.add_argument("--shap", type=int, default=500, help="SHAP Partition max_evals")
    ap.add_argument("--naive", type=int, default=None, help="texts for the one-at-a-time loop (default 1000 GPU / 100 CPU)")
    ap.add_argument("--global-n", type=int, default=None, help="sentences for the global SHAP run (default 1000 GPU / 0 CPU)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-stock", action="store_true", help="skip the slow stock lime/shap string paths")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from helpers import explain as ex
    from helpers.config import get_device, set_threads
    from helpers.data import load_adult, serialize, serialize_frame
    from helpers.models import load_classifier, load_tokenizer

    set_threads(args.threads)
    dev = get_device(args.device)
    gpu = dev.type == "cuda"
    n_texts = args.texts or (5000 if gpu else 1000)
    n_lime = args.lime or (5000 if gpu else 1000)
    n_naive = args.naive or (1000 if gpu else 100)
    n_global = args.global_n if args.global_n is not None else (1000 if gpu else 0)
    batch = args.batch_size or (512 if gpu else 64)

    timed = functools.partial(ex.time_call, repeats=args.repeats)  # cold + median warm, CUDA-synchronised

    t_start = time.perf_counter()
    tok = load_tokenizer()
    model = load_classifier(device=dev).eval()
    p = ex.BatchedPredictor(model, tok, device=dev, batch_size=batch, class_names=["<=50K", ">50K"])
    test = load_adult("test")
    text = serialize(test.iloc[0])
    m = p.masked(text, label=">50K")
    n_tokens = int(m.input_ids.shape[0])
    rows: dict[str, dict] = {}
    # the first explanation in a fresh process (model loading excluded, numba compile included)
    rows["first SHAP explanation in a fresh process"] = timed(lambda: ex.shap_explain(m, max_evals=args.shap), repeats=0)
    keep = np.random.default_rng(0).random((n_texts, m.n_words)) > 0.5
    strings = m.texts(keep)
    rows[f"naive loop, {n_naive} texts"] = timed(lambda: p.predict_one_at_a_time(strings[:n_naive]), repeats=1)
    rows[f"batched strings, {n_texts} texts"] = timed(lambda: p(strings))
    rows[f"token ids on device, {n_texts} texts"] = timed(lambda: m(keep))
    ids, lengths = m.token_ids(keep)
    rows[f"forward only, {n_texts} texts"] = timed(lambda: p.logits_from_ids(ids, lengths))
    rows[f"LIME {n_lime} samples, token ids"] = timed(lambda: ex.lime_explain(m, num_samples=n_lime))
    rows[f"SHAP Partition {args.shap} evals, token ids"] = timed(lambda: ex.shap_explain(m, max_evals=args.shap))
    if not args.skip_stock:
        rows[f"LIME {n_lime} samples, stock strings"] = timed(
            lambda: ex.lime_explain_strings(p, text, label=">50K", num_samples=n_lime), repeats=1)
        rows[f"SHAP {args.shap} evals, stock Text masker (batch 5)"] = timed(
            lambda: ex.shap_explain_strings(p, text, label=">50K", max_evals=args.shap), repeats=1)
    if n_global:
        texts = serialize_frame(test.iloc[:n_global])
        rows[f"SHAP {args.shap} evals x {n_global} sentences"] = timed(
            lambda: ex.explain_many(p, texts, label=">50K", max_evals=args.shap, progress=False), repeats=0)
    key = f"token ids on device, {n_texts} texts"
    info = {"device": str(dev), "gpu": torch.cuda.get_device_name(dev) if gpu else "", "threads": torch.get_num_threads(),
            "tokens": n_tokens, "words": m.n_words, "batch_size": batch, "torch": torch.__version__,
            "texts_per_s_token_ids": n_texts / rows[key]["warm_s"], "total_s": time.perf_counter() - t_start}
    print(f"device {info['device']} {info['gpu']} threads={info['threads']}; sentence: {n_tokens} tokens, {m.n_words} words")
    print(f"{'what':55s} {'cold s':>9s} {'warm s':>9s}")
    for k, r in rows.items():
        print(f"{k:55s} {r['cold_s']:9.3f} {r['warm_s']:9.3f}")
    print(f"token-id throughput (warm): {info['texts_per_s_token_ids']:,.0f} texts/s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
