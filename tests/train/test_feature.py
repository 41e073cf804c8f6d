"""Training the feature head: the training-time-test mask, the unroll, the data, a few real steps."""

import json

import pytest
import torch

from specviz.drafters.feature import FeatureHead, HeadConfig
from specviz.train.feature import (
    depth_mask,
    evaluate,
    expected_tokens,
    extract,
    head_loss,
    init_head,
    resolve_layers,
    shard_rows,
    unroll,
)


def test_depth_mask_sees_real_pairs_up_to_the_anchor_and_its_own_chain():
    m = depth_mask(6, 2)  # [6, 18]: the keys of depths 0, 1, 2
    row = m[4]  # a chain anchored at real pair 2, now two drafts deep
    assert row[:6].tolist() == [True, True, True, False, False, False]
    assert row[6:12].nonzero().view(-1).tolist() == [3]  # its depth-1 pair, at position 3
    assert row[12:].nonzero().view(-1).tolist() == [4]  # itself
    assert m.any(1).all()  # no query without a key (no NaN rows), even before a chain could start
    assert torch.equal(depth_mask(4, 0), torch.ones(4, 4).tril().bool())


def test_unroll_equals_what_the_drafter_computes_rolling_forward(target):
    torch.manual_seed(0)
    head = FeatureHead(HeadConfig.from_target(target.model.config)).eval()
    t, d = 9, head.cfg.hidden_size
    feats, emb = torch.randn(1, t, d), torch.randn(1, t - 1, d)
    with torch.no_grad():
        preds = unroll(head, feats, emb, 3)
        for anchor in (0, 2, 5):
            out, kv = head(feats[:, : anchor + 1], emb[:, : anchor + 1], torch.arange(anchor + 1))
            h = out[0, -1]
            torch.testing.assert_close(h, preds[0][0, anchor], atol=1e-5, rtol=1e-4)
            for k in (1, 2):
                i = anchor + k  # the k-th roll-forward reads its own prediction and the real token t_{i+1}
                out, kv = head(h.view(1, 1, -1), emb[:, i : i + 1], torch.tensor([i]), kv)
                h = out[0, -1]
                torch.testing.assert_close(h, preds[k][0, i], atol=1e-5, rtol=1e-4)


def _shards(target, n=6):
    g = torch.Generator().manual_seed(0)
    prompts = [[1, *torch.randint(3, 20, (4,), generator=g).tolist()] for _ in range(n)]
    resp = torch.randint(3, 40, (n, 12), generator=g)
    valid = torch.ones(n, 12, dtype=torch.bool)
    valid[0, 6:] = False  # an answer that ended early: padding after it is never read
    return [{"prompt": prompts, "response": resp, "valid": valid}]


def test_extract_gives_the_targets_features_per_position(target):
    shards = _shards(target)
    data = extract(target, shard_rows(shards), batch=4, with_greedy=True)
    assert len(data) == 6 and sorted(len(e.ids) for e in data)[0] == 5 + 6
    e = data[0]
    with torch.no_grad():
        ref = target.model(input_ids=e.ids[None], output_hidden_states=True).hidden_states[-1][0]
    torch.testing.assert_close(e.features.float(), ref, atol=2e-2, rtol=1e-2)  # stored as float16
    assert e.greedy is not None and torch.equal(e.greedy, target.model.lm_head(ref).argmax(-1))


def test_a_few_steps_lower_the_loss_and_evaluate_reports_each_position(target):
    torch.manual_seed(0)
    data = extract(target, shard_rows(_shards(target)), batch=6, with_greedy=True)
    head = init_head(target)
    embed = target.model.get_input_embeddings().weight.detach()
    rows = target.model.get_output_embeddings().weight.detach()
    sub = torch.arange(rows.shape[0])
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, stats = head_loss(head, data, embed, rows, depth=3, ce_weight=0.3)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.9 * first  # the cross-entropy to a soft p has an entropy floor
    assert len(stats) == 3 and all(c > 0 for _, c in stats)
    agree = evaluate(head, data, embed, rows, 3, sub)
    assert len(agree) == 3 and all(0 <= a <= 1 for a in agree)
    assert expected_tokens([1.0, 1.0]) == 3.0 and expected_tokens([0.5, 0.5]) == 1.75


def test_train_feature_reads_the_answers_and_records_the_curve(target, tmp_path, monkeypatch):
    """Issue 21: data/distill's answers train the head directly (held-out prompts never trained on), the
    held-out agreement is recorded against answer tokens seen, and training can continue a saved head."""
    import copy

    import specviz.train.feature as feature
    from specviz.train import data as datagen

    tok = copy.deepcopy(target.tokenizer)
    tok.chat_template = "{% for m in messages %}{{ m.content }}\n{% endfor %}"
    lm = type(target)(target.model, tok, "tiny", target.device)
    monkeypatch.setattr(feature, "load_model", lambda *a, **k: lm)
    g = torch.Generator().manual_seed(0)
    rows = [
        {
            "prompt": f"the cat {w}",
            "source": "template",
            "split": split,
            "mode": "greedy",
            "dtype": "float32",
            "answer_ids": torch.randint(3, 40, (10,), generator=g).tolist(),
            "ended": False,
        }
        for w, split in (("sat", "train"), ("ran", "train"), ("hid", "train"), ("ate", "held-out"))
    ]
    data = tmp_path / "distill"
    datagen.write_shard(data / "answers-t-0-greedy.jsonl.gz", rows)
    (tmp_path / "map").mkdir()
    (tmp_path / "map" / "token_map.json").write_text(json.dumps({"target_ids": list(range(40))}))
    kw = {"depth": 2, "batch": 2, "eval_every": 1, "token_map_from": tmp_path / "map", "warm_fraction": 0.5}
    stats = feature.train_feature(data, tmp_path / "head", 2, **kw)
    assert stats["train_answers"] == 3 and stats["heldout_answers"] == 1
    assert stats["sources"] == {"train": {"template greedy float32": 3}, "held-out": {"template greedy float32": 1}}
    seen = [c["answer_tokens_seen"] for c in stats["curve"]]
    assert seen[0] == 0 and seen == sorted(seen) and seen[-1] == stats["answer_tokens_seen"] > 0
    assert 0.0 <= stats["heldout_vocab_coverage"] <= 1.0
    card = (tmp_path / "head" / "README.md").read_text()
    assert "answer tokens trained on" in card and "Held out by prompt" in card
    again = feature.train_feature(data, tmp_path / "head2", 1, init_from=tmp_path / "head", **kw)
    assert again["continued_from"]["answer_tokens"] == stats["train_answer_tokens"]
    assert "Trained further from the earlier head" in (tmp_path / "head2" / "README.md").read_text()


def test_resolve_layers_names_the_choices():
    assert resolve_layers("last", 30) == () and resolve_layers("eagle3", 30) == (2, 15, 27)
    assert resolve_layers("3,10", 30) == (3, 10)
    assert resolve_layers("eagle3", 40) == (2, 20, 37)
    for bad in ("", "deep", "2,31", "-1", "3,3"):
        try:
            resolve_layers(bad, 30)
        except SystemExit as exc:
            assert "last, eagle3" in str(exc)
        else:
            raise AssertionError(bad)


def test_a_multi_layer_head_trains_on_the_fused_hidden_states(target):
    """EAGLE-3's kind: extract keeps the hidden states entering the chosen layers, the unroll fuses them,
    and a few steps lower the loss as for the last-layer head."""
    torch.manual_seed(0)
    layers = (1, 2)
    data = extract(target, shard_rows(_shards(target)), batch=6, with_greedy=True, layers=layers)
    e = data[0]
    with torch.no_grad():
        states = target.model(input_ids=e.ids[None], output_hidden_states=True).hidden_states
    d = target.model.config.hidden_size
    assert e.inputs is not None and e.inputs.shape == (len(e.ids), 2 * d)
    torch.testing.assert_close(e.inputs[:, d:].float(), states[2][0], atol=2e-2, rtol=1e-2)
    head = init_head(target, layers)
    assert head.cfg.layers == layers and head.fuse is not None
    with pytest.raises(ValueError, match="multi-layer head reads"):
        unroll(head, torch.zeros(1, 3, head.cfg.hidden_size), torch.zeros(1, 2, head.cfg.hidden_size), 1)
    embed = target.model.get_input_embeddings().weight.detach()
    rows = target.model.get_output_embeddings().weight.detach()
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss, _ = head_loss(head, data, embed, rows, depth=2, ce_weight=0.3)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    assert len(evaluate(head, data, embed, rows, 2, torch.arange(rows.shape[0]))) == 2
