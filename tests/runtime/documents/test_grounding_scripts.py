"""The check in scripts other than Latin: Chinese and Japanese, written without spaces, are read
by character pairs (every Chinese answer was "not found": no statement had a word to support), and
a sentence in Cyrillic or Greek counts its words when it is quoted (one without a number had none)."""

from __future__ import annotations

from pgpt.runtime.documents.grounding import Grounder, SourceSentence
from pgpt.runtime.documents.statements import prose_words
from pgpt.runtime.documents.sentences import content_words, split_sentences

FERRY = ("渡轮时刻表\n\n前往特雷斯科的渡轮每天早上9点15分从码头出发。返程渡轮下午4点30分离开特雷斯科。\n"
         "票价为成人12英镑，儿童6英镑。狗可以免费乘船，但必须系上牵引绳。")


def over_the_ferry(embedder, question: str) -> Grounder:  # type: ignore[no-untyped-def]
    sentences = [SourceSentence(1, "渡轮.txt", 0, text) for text in split_sentences(FERRY)]
    return Grounder(question, embedder.embed([question])[0], sentences, embedder.embed([s.text for s in sentences]),
                    embedder.embed)


def test_chinese_and_japanese_are_read_by_character_pairs() -> None:
    assert content_words("渡轮几点出发？") == {"渡轮", "轮几", "几点", "点出", "出发"}
    assert content_words("フェリーは9時に出ます") >= {"フェ", "ェリ", "ます"}
    assert content_words("港") == {"港"}  # a lone character is a word of its own
    assert content_words("The ferry (渡轮) leaves.") == {"ferry", "渡轮", "leav"}


def test_a_chinese_answer_copied_from_its_source_is_kept_and_a_changed_time_is_not(embedder) -> None:  # type: ignore[no-untyped-def]
    check = over_the_ferry(embedder, "渡轮几点出发？")
    result = check.check("前往特雷斯科的渡轮每天早上9点15分从码头出发。[1]", abstained=False)
    assert result.kind == "answer" and "9点15分" in result.text and result.text.endswith("[1]"), result
    assert [q.text for q in result.quotes] == ["前往特雷斯科的渡轮每天早上9点15分从码头出发。"]
    changed = check.check("前往特雷斯科的渡轮每天早上9点45分从码头出发。[1]", abstained=False)
    assert "9点45分" not in changed.text and changed.measures["invented"] == 1, changed


def test_sentences_in_any_alphabet_have_words_to_quote() -> None:
    assert prose_words("Паром отходит от причала рано утром") == 6  # it was 0: no Latin letters
    assert prose_words("Το πλοίο φεύγει νωρίς") == 4
    assert prose_words("狗可以免费乘船，但必须系上牵引绳。") == 7  # a word for each two characters
    assert prose_words("PREFERRED_URL_SCHEME") == 1  # an identifier is still one word


def test_a_sentence_in_a_script_without_capitals_is_a_sentence_of_its_own() -> None:
    """An Arabic sentence after an English one was quoted with it, as support for the English one."""
    assert split_sentences("The cafe serves green tea. \u0641\u064a \u0627\u0644\u0645\u062f\u064a\u0646\u0629 "
                           "\u0645\u0643\u062a\u0628\u0629.") == [
        "The cafe serves green tea.", "\u0641\u064a \u0627\u0644\u0645\u062f\u064a\u0646\u0629 "
        "\u0645\u0643\u062a\u0628\u0629."]
    assert split_sentences("\u6771\u4eac\u306f\u5927\u304d\u3044\u3002\u5927\u962a\u3082\u3002") == [
        "\u6771\u4eac\u306f\u5927\u304d\u3044\u3002", "\u5927\u962a\u3082\u3002"]
    assert split_sentences("It is pack-\naged. see below.") == ["It is packaged. see below."]  # lower case goes on
