"""The vLLM-style structured-output backend, driven the way a batch engine
drives it: a scheduler loop with a bounded number of running requests,
speculative drafts (validate_tokens, then fill the mask for every draft
position by accepting and rolling back), a target model that keeps a prefix
of each draft plus one bonus token, preemption (reset, then the request's
tokens are replayed when it resumes), and termination. The "models" are
random number generators over the real Qwen2.5 vocabulary; every finished
output is checked with an independent checker."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from corral import bitmask_to_bool
from corral.adapters.vllm import CorralBackend, CorralGrammar
from reference import Grammar

ARITH = r"""
root ::= expr
expr ::= term ( [-+*] term ){0,2}
term ::= [0-9]{1,3} | "(" [0-9]{1,2} [-+] [0-9]{1,2} ")"
"""
RECORD = r"""root ::= "{\"id\": " [1-9] [0-9]{0,2} ", \"tag\": \"" [a-z]{1,6} "\"}" """
EMAIL = r"[a-z]{2,6}@example\.(com|org)"
CHOICES = ["red", "green", "light blue", 'say "hi"']

REQUESTS = [
    ("GRAMMAR", ARITH),
    ("REGEX", EMAIL),
    ("CHOICE", json.dumps(CHOICES)),
    ("GRAMMAR", RECORD),
    ("REGEX", r"\d{3}-\d{4}"),
    ("GRAMMAR", ARITH),
    ("CHOICE", json.dumps(CHOICES)),
    ("GRAMMAR", RECORD),
]


def valid(kind: str, spec: str, text: str) -> bool:
    if kind == "REGEX":
        return re.fullmatch(spec, text) is not None
    if kind == "CHOICE":
        return text in json.loads(spec)
    if spec is RECORD:
        obj = json.loads(text)
        return set(obj) == {"id", "tag"} and isinstance(obj["id"], int)
    return Grammar.parse(spec).accepts_text(text)


class Req:
    def __init__(self, rid: str, kind: str, spec: str, grammar: CorralGrammar) -> None:
        self.rid, self.kind, self.spec, self.grammar = rid, kind, spec, grammar
        self.output: list[int] = []
        self.preempted = 0


def allowed_ids(bitmask: torch.Tensor, row: int, vocab: int) -> np.ndarray:
    return np.flatnonzero(bitmask_to_bool(bitmask[row].numpy(), vocab))


def sample(rng: random.Random, allowed: np.ndarray, stops: set[int]) -> int:
    """The 'target model': prefers stopping when it may, else uniform."""
    assert allowed.size, "the mask allows nothing"
    can_stop = [int(t) for t in allowed if int(t) in stops]
    if can_stop and rng.random() < 0.6:
        return can_stop[0]
    return int(allowed[rng.randrange(allowed.size)])


@pytest.mark.parametrize("seed", [0, 1])
def test_scheduler_with_speculation_preemption_and_termination(qwen, seed):
    rng = random.Random(seed)
    backend = CorralBackend(qwen.info)
    vocab = backend.vocab_size
    stops = set(qwen.stop_ids)
    max_num_seqs, k = 3, 3
    bitmask = backend.allocate_token_bitmask(max_num_seqs * (k + 1))
    assert isinstance(bitmask, torch.Tensor)
    assert bitmask.dtype == torch.int32
    assert tuple(bitmask.shape) == (max_num_seqs * (k + 1), -(-vocab // 32))

    waiting = [
        Req(f"req-{i}", kind, spec, backend.compile_grammar(kind, spec))
        for i, (kind, spec) in enumerate(REQUESTS)
    ]
    running: list[Req] = []
    finished: list[Req] = []
    steps = 0
    rejected_drafts = 0
    while waiting or running:
        steps += 1
        assert steps < 400, "the scheduler did not finish"
        while waiting and len(running) < max_num_seqs:
            req = waiting.pop(0)
            if req.output:  # resumed after preemption: recompute its state
                assert req.grammar.num_processed_tokens == 0
                assert req.grammar.accept_tokens(req.rid, req.output)
            running.append(req)
        # preempt one request now and then (the engine ran out of KV blocks)
        if steps % 5 == 0 and len(running) > 1:
            victim = running.pop(rng.randrange(len(running)))
            before = backend.allocate_token_bitmask(1)
            victim.grammar.fill_bitmask(before, 0)
            victim.grammar.reset()
            assert victim.grammar.num_processed_tokens == 0
            assert not victim.grammar.is_terminated()
            # replaying its tokens gives back the same mask
            assert victim.grammar.accept_tokens(victim.rid, victim.output)
            after = backend.allocate_token_bitmask(1)
            victim.grammar.fill_bitmask(after, 0)
            assert torch.equal(before, after)
            victim.grammar.reset()
            victim.preempted += 1
            waiting.append(victim)

        # drafts: a 'draft model' proposes k tokens, some of them junk
        drafts: dict[str, list[int]] = {}
        for req in running:
            draft = []
            probe = req.grammar.matcher.fork()
            one = backend.allocate_token_bitmask(1)
            for _ in range(k):
                if probe.is_terminated():
                    break
                if rng.random() < 0.25:
                    draft.append(rng.randrange(qwen.tokenizer_size))
                    continue
                probe.fill_next_token_bitmask(one, 0)
                t = sample(rng, allowed_ids(one, 0, vocab), stops)
                draft.append(t)
                probe.accept_token(t)
            n_before = req.grammar.num_processed_tokens
            valid_prefix = req.grammar.validate_tokens(draft)
            assert req.grammar.num_processed_tokens == n_before  # validate leaves no trace
            assert valid_prefix == draft[: len(valid_prefix)]
            rejected_drafts += len(draft) - len(valid_prefix)
            drafts[req.rid] = valid_prefix

        # the engine fills a row per draft position: accept each draft token, then roll back
        bitmask.fill_(-1)
        row_of: dict[tuple[str, int], int] = {}
        row = 0
        for req in running:
            draft = drafts[req.rid]
            for i, tok in enumerate([*draft, None]):
                req.grammar.fill_bitmask(bitmask, row)
                row_of[(req.rid, i)] = row
                row += 1
                if tok is not None:
                    assert req.grammar.accept_tokens(req.rid, [tok])
            req.grammar.rollback(len(draft))
            assert req.grammar.num_processed_tokens == len(req.output)

        # the target model keeps a prefix of the draft and adds a bonus token
        for req in list(running):
            draft = drafts[req.rid]
            keep = rng.randint(0, len(draft))
            for i in range(keep):
                assert draft[i] in allowed_ids(bitmask, row_of[(req.rid, i)], vocab)
            if keep and draft[keep - 1] in stops:  # the draft's stop token was kept: done
                new = draft[:keep]
            else:
                bonus = sample(rng, allowed_ids(bitmask, row_of[(req.rid, keep)], vocab), stops)
                new = [*draft[:keep], bonus]
            assert req.grammar.accept_tokens(req.rid, new)
            req.output.extend(new)
            if req.grammar.is_terminated():
                running.remove(req)
                finished.append(req)

    assert len(finished) == len(REQUESTS)
    assert rejected_drafts > 0
    assert any(r.preempted for r in finished)
    for req in finished:
        assert req.output[-1] in stops
        assert all(t not in stops for t in req.output[:-1])
        text = b"".join(qwen.tokens[t] for t in req.output[:-1]).decode()
        assert valid(req.kind, req.spec, text), (req.kind, text)
        # a finished request refuses more tokens and allows none
        assert not req.grammar.accept_tokens(req.rid, [req.output[0]])
        one = backend.allocate_token_bitmask(1)
        req.grammar.fill_bitmask(one, 0)
        assert not one.any()


def test_accept_tokens_is_all_or_nothing(qwen):
    backend = CorralBackend(qwen.info)
    g = backend.compile_grammar("REGEX", EMAIL)
    ab = qwen.enc.encode("ab")  # type: ignore[attr-defined]
    junk = qwen.enc.encode("!!")  # type: ignore[attr-defined]
    assert g.accept_tokens("r", ab)
    n = g.num_processed_tokens
    assert not g.accept_tokens("r", [*ab, *junk])
    assert g.num_processed_tokens == n
    assert g.validate_tokens([*ab, *junk]) == ab
    g.rollback(0)
    with pytest.raises(ValueError, match="roll back"):
        g.rollback(n + 1)


def test_batch_fill_matches_per_request_fills(qwen):
    backend = CorralBackend(qwen.info)
    grammars = [backend.compile_grammar(kind, spec) for kind, spec in REQUESTS]
    grammars.append(backend.compile_grammar("JSON_OBJECT", ""))
    for g in grammars[::2]:
        g.fill_bitmask(backend.allocate_token_bitmask(1), 0)
    want = backend.allocate_token_bitmask(len(grammars) + 2)
    for i, g in enumerate(grammars):
        g.fill_bitmask(want, i + 2)
    got = backend.allocate_token_bitmask(len(grammars) + 2)
    backend.fill_bitmasks(grammars, got, indices=[i + 2 for i in range(len(grammars))])
    assert torch.equal(got, want)


def test_json_object_and_unsupported(qwen):
    backend = CorralBackend(qwen.info)
    g = backend.compile_grammar("JSON_OBJECT", "")
    assert g.accept_tokens("r", qwen.enc.encode('{"a": [1, {"b": null}]}'))  # type: ignore[attr-defined]
    assert g.accept_tokens("r", [qwen.stop_ids[0]])
    assert g.is_terminated()
    with pytest.raises(NotImplementedError):
        backend.compile_grammar("STRUCTURAL_TAG", "{}")
    with pytest.raises(ValueError, match="CHOICE"):
        backend.compile_grammar("CHOICE", "[]")
    backend.destroy()
