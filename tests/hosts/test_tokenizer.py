"""The evolora tokenizer: single digits, answer/prompt boundaries that never merge, round trips."""

from __future__ import annotations

import numpy as np

from evolora.hosts.tokenizer import train_tokenizer
from evolora.tasks import TaskGrid


def test_digits_and_punctuation_are_single_tokens(tiny_tokenizer):
    ids = tiny_tokenizer("x=12345;", add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.convert_ids_to_tokens(ids)[-7:] == ["=", "1", "2", "3", "4", "5", ";"]


def test_bos_is_added_and_text_round_trips(tiny_tokenizer):
    text = 'json: {"a":1,\'b\':null} ={"a":1}\nThou art’s\n'
    ids = tiny_tokenizer(text)["input_ids"]
    assert ids[0] == tiny_tokenizer.bos_token_id
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_prompt_and_answer_tokenise_the_same_apart_as_joined():
    # Trained on task lines, a plain byte-level BPE learns merges such as `={"` that span the
    # prompt's final separator and the answer (about 30% of these examples would differ).
    grid = TaskGrid.named("default")
    lines = [e.prompt + e.answer + "\n" for e in grid.sample_batch(np.random.default_rng(1), 2000)]
    tokenizer = train_tokenizer(lines, vocab_size=600)
    for e in grid.sample_batch(np.random.default_rng(0), 300):
        apart = (
            tokenizer(e.prompt)["input_ids"]
            + tokenizer(e.answer + "\n", add_special_tokens=False)["input_ids"]
        )
        assert apart == tokenizer(e.prompt + e.answer + "\n")["input_ids"], e
