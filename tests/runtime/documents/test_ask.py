"""`ask`: cited answers from the index on the real default model, and the similar-question cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.runtime.documents import answers
from pgpt.runtime.documents.answers import NOT_FOUND, AskStream
from pgpt.runtime.documents.sentences import flatten_text
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.prompt_room import fit_passages
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings

QUESTION = "What is the launch code of project Zephyr?"


@pytest.fixture()
def indexed(settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zephyr.txt").write_text("Project Zephyr\n\nThe launch code of project Zephyr is 7341.\n")
    (docs / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    embedder = default_embedder(settings)
    ingest(settings, [docs], embedder)
    engine = ChatEngine(settings)
    yield settings, embedder, engine, docs
    engine.close()


def ask(indexed, question: str) -> AskStream:  # type: ignore[no-untyped-def]
    settings, embedder, engine, _ = indexed
    stream = AskStream(engine, open_store(settings, embedder), embedder, question, SamplingOptions(max_new_tokens=48))
    pieces = list(stream)
    # the pieces are the draft as it was written; the result holds the checked answer
    assert "".join(pieces).strip() in (stream.result.draft, stream.result.answer)
    return stream


def test_answer_cites_the_file_it_comes_from_with_its_supporting_quote(indexed) -> None:  # type: ignore[no-untyped-def]
    result = ask(indexed, QUESTION).result
    assert result.sources[0]["source"].endswith("zephyr.txt") and "7341" in result.sources[0]["text"]
    assert result.kind in {"answer", "quote"} and "7341" in result.answer and not result.cached
    quote = result.quotes[0]
    assert quote["file"].endswith("zephyr.txt") and quote["sentence"] == "The launch code of project Zephyr is 7341."
    assert quote["page"] == 0 and quote["source"] == 1 and f"[{quote['source']}]" in result.answer
    assert set(result.timings) == {"embed_s", "retrieve_s", "ttft_s", "decode_tok_s", "check_s", "total_s",
                                   "prompt_tokens", "new_tokens"}
    assert result.timings["ttft_s"] > 0
    assert set(result.as_json()) == {"answer", "kind", "not_found", "quotes", "sources", "closest", "left_out", "cached",
                                     "finish_reason", "timings"}


def test_an_answer_is_cut_only_where_it_ends_where_the_cut_draft_ended() -> None:
    """"(cut at the 256-token limit; --max-tokens allows a longer answer)" stood under two whole
    sentences the check kept of a draft that ran on (t79): the answer ends where the draft did, or is whole."""
    from pgpt.runtime.documents.statements import answer_end

    draft = "The cache cut the load time to 2.1 seconds. It ships in Beacon 2.0. The cache cut the load time to"
    assert answer_end(draft, "The cache cut the load time to 2.1 seconds. [1]", "length") == "stop"
    assert answer_end(draft, "The cache cut the load time to 2.1 seconds. [1] The cache cut the load time to [1]",
                      "length") == "length"
    assert answer_end(draft, "The cache cut the load time to 2.1 seconds. [1]", "stop") == "stop"


def test_nothing_relevant_says_so_instead_of_inventing(indexed) -> None:  # type: ignore[no-untyped-def]
    result = ask(indexed, "How do penguins regulate their body temperature in Antarctica?").result
    assert result.answer == NOT_FOUND and result.sources == [] and result.not_found and result.quotes == []
    assert {Path(p["source"]).name for p in result.closest} == {"zephyr.txt", "ferry.txt"}  # for the user to judge
    # each with its sentence closest to the question, where the user looks first
    assert all(p["sentence"] and p["sentence"] in flatten_text(p["text"]) for p in result.closest)


def test_each_step_is_told_as_it_starts(indexed) -> None:  # type: ignore[no-untyped-def]
    """The app said "answering…" through the search, the prompt's reading, the draft and the check (t53)."""
    settings, embedder, engine, _ = indexed
    store = open_store(settings, embedder)
    states: list[str] = []
    stream = AskStream(engine, store, embedder, "Which day does the ferry to the island leave?",
                       SamplingOptions(max_new_tokens=16))
    stream.on_state = states.append
    pieces = list(stream)
    assert states == ["searching", "reading", "writing", "checking"] and pieces, (states, stream.result.draft)
    unrelated = AskStream(engine, store, embedder, "How do penguins keep warm in Antarctica?", SamplingOptions())
    unrelated.on_state = (told := []).append
    assert list(unrelated) == [NOT_FOUND] and told == ["searching"]  # no passage is close: no model step


def test_a_question_next_to_related_text_is_not_found_and_replayed_so(indexed) -> None:  # type: ignore[no-untyped-def]
    question = "How many passengers can the ferry to the island carry?"
    first = ask(indexed, question)
    result = first.result
    assert result.kind == "not_found" and result.answer == NOT_FOUND, result.draft
    assert Path(result.closest[0]["source"]).name == "ferry.txt" and result.quotes == []
    assert "ferry" in result.closest[0]["sentence"] and result.closest[0]["sentence"] in result.closest[0]["text"]
    again = ask(indexed, question.lower().rstrip("?")).result
    assert again.cached and again.as_json() | {"timings": {}} == result.as_json() | {"cached": True, "timings": {}}


def test_a_similar_question_is_answered_from_the_cache_until_the_index_changes(indexed) -> None:  # type: ignore[no-untyped-def]
    first = ask(indexed, QUESTION).result
    again = ask(indexed, "What is the launch code of project Zephyr").result  # no question mark
    assert again.cached and again.answer == first.answer and again.sources == first.sources
    assert again.quotes == first.quotes and again.kind == first.kind
    # No generation ran (an answer takes seconds); the 50 ms target is measured by bench-docs.
    assert again.timings["total_s"] < 0.5
    assert not ask(indexed, "What is the launch code of project Apollo?").result.cached  # another fact
    # the question turned round by a "not" (cosine 0.97 to it) got the same answer
    assert not ask(indexed, "What is not the launch code of project Zephyr?").result.cached
    # nor a word that changes what is asked, though a rewording's cosine: "is"/"was" scored 0.972 (t65)
    assert not ask(indexed, "What was the launch code of project Zephyr?").result.cached
    assert ask(indexed, "whats the launch code for project zephyr").result.cached  # a rewording still hits
    # a release whose check answers differently does not replay the old verdicts (the exact-prompt
    # cache, left out here, replays only the draft, which is checked again)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answers, "CHECK_VERSION", "a later check")
        patch.setattr(indexed[2], "cache", None)
        assert not ask(indexed, QUESTION).result.cached
    settings, embedder, _, docs = indexed
    (docs / "zephyr.txt").write_text("Project Zephyr\n\nThe launch code of project Zephyr is 9902.\n")
    ingest(settings, [docs], embedder)
    after = ask(indexed, QUESTION).result
    assert not after.cached and "9902" in after.sources[0]["text"]


@pytest.mark.parametrize(("first", "second", "same"), [
    ("Who approves expenses above the limit?", "Who approves expenses below the limit?", False),  # cosine 0.985
    ("Who is the CEO of Northwind?", "Who was the CEO of Northwind?", False),  # 0.972
    ("What was the revenue last year?", "What was the revenue this year?", False),  # 0.950
    ("What's the launch code of project Zephyr?", "whats the launch code for project zephyr", True),
    ("What is the refund window?", "What the refund window", True)])
def test_the_cache_takes_rewordings_not_questions_with_another_word(first: str, second: str, same: bool) -> None:
    """Each pair but the last two was served the other's answer (t65): within the cosine, every word
    but a few fillers must be in both."""
    from pgpt.runtime.documents.similar_questions import asked_words

    assert (asked_words(first) == asked_words(second)) is same


def test_an_index_made_again_is_not_answered_from_the_old_ones_cache(indexed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The index deleted (or moved aside, as "index damaged" advises) and made again from other files:
    its table had the old one's name and commit number, and the old answer, with the forgotten
    document's text in its sources, came from the cache (t60)."""
    import json
    import shutil

    from pgpt.runtime.documents.index_folder import index_dir

    assert "7341" in ask(indexed, QUESTION).result.answer
    settings, embedder, _, _ = indexed
    shutil.rmtree(index_dir(settings))
    other = tmp_path / "other"
    other.mkdir()  # as many files as before: the same number of commits
    (other / "menu.txt").write_text("The canteen serves soup on Mondays and fish on Fridays.\n")
    (other / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    ingest(settings, [other], embedder)
    again = ask(indexed, QUESTION).result
    assert not again.cached and "7341" not in json.dumps(again.as_json()), again.as_json()


def test_a_similar_question_from_the_cache_reports_the_answers_tokens(indexed) -> None:  # type: ignore[no-untyped-def]
    """It said 0 completion tokens (and the server's usage with it): the answer has its tokens."""
    first = ask(indexed, QUESTION).result
    again = ask(indexed, QUESTION.lower()).result
    model = indexed[2].model
    assert again.cached and set(again.timings) == set(first.timings)
    assert again.timings["new_tokens"] == len(model.tokenize(first.answer)) > 0
    assert again.timings["prompt_tokens"] == 0  # nothing was read: the question's embedding found it


def test_the_similar_question_index_holds_packed_vectors_not_answers(indexed) -> None:  # type: ignore[no-untyped-def]
    first = ask(indexed, QUESTION)
    index = indexed[2].cache.get(first._scope())
    (entry,) = index["entries"]
    # A lookup parses this index on every question: no answer text, no passages, no float lists.
    assert set(entry) == {"question", "numbers", "denies", "answer_key", "vector"} and isinstance(entry["vector"], str)
    assert indexed[2].cache.get(entry["answer_key"])["answer"] == first.result.answer
    again = ask(indexed, QUESTION.upper()).result
    assert again.cached and again.answer == first.result.answer


def test_the_model_reads_the_sentences_closest_to_the_question(indexed) -> None:  # type: ignore[no-untyped-def]

    settings, embedder, engine, docs = indexed
    teams = ["design", "sales", "support", "finance", "legal", "research", "hiring", "security"]
    filler = [f"The {team} team meets every {day}." for team, day in zip(teams, ["Monday", "Tuesday"] * 4)]
    (docs / "handbook.txt").write_text(" ".join(filler[:4] + ["The parking garage closes at 11 pm."] + filler[4:]))
    ingest(settings, [docs], embedder)
    store = open_store(settings, embedder)
    question = "When does the parking garage close?"
    hits = search(store, embedder, question, k=3)
    vector = embedder.embed([question])[0]
    stream = AskStream(engine, store, embedder, question, SamplingOptions(max_new_tokens=32), sentences=3)
    passages, sentences, vectors = stream._sentences(hits)
    shown = stream._focus(sentences, vectors, vector)
    kept = [s for s, keep in zip(sentences, shown) if keep]
    assert passages[0].source.endswith("handbook.txt") and len(kept) == 3  # three sentences in all
    assert "The parking garage closes at 11 pm." in [s.text for s in kept]
    prompt = stream._messages(passages, sentences, shown)[1]["content"]
    handbook = [s.text for s in sentences if s.number == 1]
    places = [prompt.index(s.text) for s in kept if s.number == 1]
    assert len(handbook) == 9 and places == sorted(places)  # fewer than the passage's 9, in document order
    assert sum(s.text in prompt for s in sentences if s.number == 1) == len(places)
    whole = AskStream(engine, store, embedder, question, SamplingOptions(max_new_tokens=32), sentences=0)
    assert all(whole._focus(sentences, vectors, vector))
    assert passages[0].text in whole._messages(passages, sentences, [True] * len(sentences))[1]["content"]
    answer = "".join(stream)
    # the sources name the whole passage the sentences came from
    assert answer.strip() and "The design team meets" in stream.result.sources[0]["text"]


def test_a_follow_up_reads_the_conversation_and_the_system_prompt(indexed) -> None:  # type: ignore[no-untyped-def]
    """A server's chat with use_context: PrivateGPT's clients send the system prompt and earlier turns,
    which were dropped (a follow-up "what is it?" was read alone). Retrieval still uses the question."""
    settings, embedder, engine, _ = indexed
    history = [{"role": "system", "content": "Answer in one short sentence."},
               {"role": "user", "content": "Which project has a launch code?"},
               {"role": "assistant", "content": "Project Zephyr has one [1]."}]
    store = open_store(settings, embedder)
    stream = AskStream(engine, store, embedder, "What is it?", SamplingOptions(max_new_tokens=24), history=history)
    hits = fit_passages(engine, search(store, embedder, QUESTION, k=2), "What is it?", 24,
                        answers.SYSTEM_PROMPT + stream.instructions, stream.turn_tokens)
    passages, sentences, _ = stream._sentences(hits)
    messages = stream._messages(passages, sentences, [True] * len(sentences))
    assert messages[0]["role"] == "system" and messages[0]["content"].endswith("\n\nAnswer in one short sentence.")
    assert messages[1:3] == history[1:] and messages[3]["role"] == "user"
    assert messages[3]["content"].endswith("Question: What is it?") and "7341" in messages[3]["content"]
    # The same words after another conversation are another question for the similar-question cache.
    plain = ask(indexed, QUESTION).result
    followed = AskStream(engine, store, embedder, QUESTION, SamplingOptions(max_new_tokens=48), history=history)
    list(followed)
    assert not plain.cached and not followed.result.cached
    again = AskStream(engine, store, embedder, QUESTION, SamplingOptions(max_new_tokens=48), history=history)
    list(again)
    assert again.result.cached and again.result.answer == followed.result.answer


def test_a_long_conversation_keeps_its_newest_turns_within_a_quarter_of_the_context(indexed) -> None:  # type: ignore[no-untyped-def]
    settings, embedder, engine, _ = indexed
    words = " ".join(["harbour"] * 600)
    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n}: {words}"} for n in range(40)]
    stream = AskStream(engine, open_store(settings, embedder), embedder, QUESTION, SamplingOptions(max_new_tokens=48),
                       history=turns)
    kept = stream.turns
    assert 0 < len(kept) < 40 and kept == turns[-len(kept):]  # the newest, oldest first
    assert sum(len(engine.model.tokenize(t["content"])) for t in kept) <= engine.model.max_context // 4
    answer = "".join(stream)  # the passages still fit beside them
    assert answer and "7341" in stream.result.sources[0]["text"]


# "twice": fits the context once but not twice, as the prompt holds it (a tester's 24 KB question in
# the app ended in the engine's "The prompt has 9,068 tokens ... lower --max-tokens")
@pytest.mark.parametrize("question", ["harbour ferry " * 4600, "harbour ferry " * 2500, "x" * 3_000_000],
                         ids=["tokens", "twice", "megabytes"])
def test_a_question_too_long_for_the_context_is_refused_before_it_is_embedded(indexed, question: str) -> None:  # type: ignore[no-untyped-def]
    """A tester's 4 MB `ask -` took 39 s and 2 GB of memory to end in "not found"."""
    import time

    from pgpt.runtime.errors import ContextLengthError

    settings, embedder, engine, _ = indexed
    stream = AskStream(engine, open_store(settings, embedder), embedder, question, SamplingOptions(max_new_tokens=48))
    started = time.perf_counter()
    refused = r"The question has [\d,]+ (tokens|characters), but .* up to [\d,]+ tokens"
    with pytest.raises(ContextLengthError, match=refused):
        next(iter(stream))
    assert time.perf_counter() - started < 2


def test_a_follow_up_is_searched_after_the_question_it_follows(indexed) -> None:  # type: ignore[no-untyped-def]
    """ "And what is it?" after a question about project Zephyr's launch code found nothing alone: it
    was "not found" before the model ran (in the app and through a server), though the model reads
    the earlier turns."""
    from pgpt.runtime.documents.followups import retrieval_question

    assert retrieval_question("And when does it close?", ["When does the lighthouse open?"]) == (
        "When does the lighthouse open? And when does it close?")
    assert retrieval_question("When does the museum open?", ["When does the lighthouse open?"]) == (
        "When does the museum open?")  # a question of its own
    assert retrieval_question("And when does it close?", []) == "And when does it close?"
    # short is no follow-up: a new subject in one content word, or a question in another script
    for alone in ("Who is Ferris?", "What is the budget?", "\u6771\u4eac\u30aa\u30d5\u30a3\u30b9\u306e\u96fb\u8a71\u756a\u53f7\u306f\uff1f"):
        assert retrieval_question(alone, ["How much is a week of on-call duty paid?"]) == alone
    # a pronoun after two things the question names points into the question ("... fix it?"), not back
    for alone in ("Under the Mozilla license, if a contributor warns me, how many days do I have to fix it?",
                  "How long does the OpenAI client wait before it gives up on a slow call?"):
        assert retrieval_question(alone, ["In which courts can someone sue over the license?"]) == alone
    assert retrieval_question("When was it released?", ["Who wrote pandas?"]) == (
        "Who wrote pandas? When was it released?")
    assert retrieval_question("What time?", ["When does the ferry leave?"]) == "When does the ferry leave? What time?"
    assert retrieval_question("On Friday?", ["When does the ferry leave?"]) == "When does the ferry leave? On Friday?"
    # a follow-up of a follow-up is searched after the question the chain started from
    assert retrieval_question("And how much are its tickets?", ["When does the museum open?", "And when does it close?"]
                              ) == "When does the museum open? And how much are its tickets?"
    settings, embedder, engine, _ = indexed
    history = [{"role": "user", "content": "When does the lighthouse open?"}, {"role": "assistant", "content": "9:40"}]
    served = AskStream(engine, open_store(settings, embedder), embedder, "And when does it close?",
                       SamplingOptions(), history=history)  # a server's chat: the history's questions
    assert served.query == "When does the lighthouse open? And when does it close?"
    store, options = open_store(settings, embedder), SamplingOptions(max_new_tokens=48)
    follow_up = "And what is it?"
    alone = AskStream(engine, store, embedder, follow_up, options)
    list(alone)
    assert alone.result.kind == "not_found" and alone.result.timings["ttft_s"] == 0.0  # the model never ran
    after = AskStream(engine, store, embedder, follow_up, options, earlier=["Does project Zephyr have a launch code?"])
    list(after)
    assert after.result.sources and after.result.sources[0]["source"].endswith("zephyr.txt")
    assert after.result.timings["ttft_s"] > 0 and not after.result.cached
    # without earlier turns the model is asked the follow-up as it is searched: it read "And what is it?"
    # alone, so one draft (and its cached copy) answered whichever question came before (t72)
    passages, sentences, _ = after._sentences(search(store, embedder, after.query, k=1))
    asked = after._messages(passages, sentences, [True] * len(sentences))[-1]["content"]
    assert asked.startswith("Question: Does project Zephyr have a launch code? And what is it?"), asked
    other = AskStream(engine, store, embedder, follow_up, options, earlier=["Who leads project Zephyr?"])
    list(other)
    assert not other.result.cached  # another chain: not the first chain's draft from the cache
    again = AskStream(engine, store, embedder, follow_up, options)  # alone again: not the follow-up's cached answer
    list(again)
    assert again.result.kind == "not_found" and again.result.sources == []


def test_a_sentence_that_answers_a_question_far_from_its_page_is_quoted(settings: Settings, tmp_path: Path) -> None:
    """"Who was the keeper in 1920?" is far from a page about a lighthouse as a whole, below the gate
    that keeps unrelated passages from the model, so it was "not found" while the closest passage
    shown said "Its keeper in 1920 was Edda Lund." (t54). Such a sentence is now quoted; questions
    that it does not answer stay "not found"."""
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text(
        "# The Varnholm Lighthouse\n\nThe Varnholm lighthouse was built in 1887 on the island of Varnholm. Its "
        "keeper in 1920 was Edda Lund.\nThe light can be seen 22 nautical miles out to sea. The lighthouse is open "
        "to visitors from May to September, daily from 10:00 to 16:00.\nThe ferry to Varnholm leaves Skarhamn at "
        "08:15 every morning.\n")
    (docs / "bakery.txt").write_text("The bakery on Harbour Street opens at 07:00 and closes at 18:30.\n")
    embedder = default_embedder(settings)
    ingest(settings, [docs], embedder)
    store, engine = open_store(settings, embedder), ChatEngine(settings)
    try:
        question = "Who was the keeper in 1920?"
        assert search(store, embedder, question, k=3)[0].similarity < answers.MIN_SIMILARITY  # the case at hand
        stream = AskStream(engine, store, embedder, question, SamplingOptions(max_new_tokens=48))
        assert list(stream) == [stream.result.answer]
        result = stream.result
        assert result.kind == "quote" and result.answer.startswith("Quote from the documents:"), result.answer
        assert result.quotes[0]["sentence"] == "Its keeper in 1920 was Edda Lund."
        assert result.sources[0]["source"].endswith("lighthouse.md") and result.timings["ttft_s"] == 0.0
        for other in ("Who was the keeper in 1930?", "When did the keeper retire?"):
            unanswered = AskStream(engine, store, embedder, other, SamplingOptions(max_new_tokens=48))
            list(unanswered)
            assert unanswered.result.kind == "not_found", (other, unanswered.result.answer)
    finally:
        engine.close()


def test_the_passages_fit_a_server_sequence_smaller_than_the_models_window(settings: Settings, tmp_path: Path) -> None:
    """`pgpt-serve --context 512` refused every documents question with "Prompt too long ... Shorten the
    prompt": the passages were fitted to the model's window (t80). Now to the sequence's, and a sequence
    too small for any documents answer says so and names the server's setting."""
    from pgpt.runtime.errors import ContextLengthError
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.llm.serving.limits import SchedulerConfig
    from pgpt.runtime.llm.serving.scheduler import Scheduler

    docs = tmp_path / "long"
    docs.mkdir()
    for name in ("alpha", "beta", "gamma"):  # passages of about 250 tokens each, more than 1024 in all
        (docs / f"{name}.txt").write_text(f"The {name} launch code is 7341. " + "The ferry leaves at noon. " * 80)
    embedder = default_embedder(settings)
    ingest(settings, [docs], embedder)
    owner = ChatEngine(settings)
    try:
        for context in (1024, 512):
            scheduler = Scheduler(owner.model, SchedulerConfig(parallel=1, context=context))
            try:
                engine = ChatEngine.on_scheduler(scheduler, None)
                assert engine.context == context and owner.context == owner.model.max_context
                stream = AskStream(engine, open_store(settings, embedder), embedder, "What is the alpha launch code?",
                                   SamplingOptions(max_new_tokens=48), sentences=0)
                if context == 512:
                    with pytest.raises(ContextLengthError, match="at least 656 tokens, but a sequence here holds 512"):
                        "".join(stream)
                    continue
                "".join(stream)
                assert stream.result.sources and stream.result.timings["prompt_tokens"] + 48 <= context
            finally:
                scheduler.close()
    finally:
        owner.close()
