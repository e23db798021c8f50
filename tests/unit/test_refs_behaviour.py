"""What crosses the workflow/activity boundary with references (core/refs.py), case by case: where
a text is short enough to travel as it is, what a worker keeps, what the query answers, how a
composition is read back and what an error names. Complements test_refs.py's round trips."""

import hashlib
import json

import pytest

from gecko_temporal.core.refs import (
    INPUT,
    MIN_REF,
    MIN_SHARED,
    Composer,
    RefError,
    Unpacked,
    ValueCache,
    ValueTable,
    as_shipped,
    common_prefix,
    digest,
    expand_output,
    input_refs,
    is_packed,
    is_ref,
    output_texts,
    pack_input,
    pack_output,
    wanted,
)


def test_a_digest_is_128_bits_of_sha256_and_reads_any_python_string():
    assert digest("abc") == hashlib.sha256(b"abc").hexdigest()[:32]
    assert len(digest("")) == 32
    assert digest("\ud800") == hashlib.sha256("\ud800".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def test_references_and_compositions_are_told_from_json_by_their_first_character():
    assert is_ref("@abc") and not is_ref("+[]") and not is_ref("") and not is_ref('"@"')
    assert is_packed("@abc") and is_packed('+["x"]') and not is_packed("[1]") and not is_packed("")


def test_texts_from_min_ref_characters_on_travel_as_references():
    table = ValueTable()
    assert MIN_REF == 256 and MIN_SHARED == 128
    short, edge = "s" * (MIN_REF - 1), "e" * MIN_REF
    assert table.ref("o", short) == short and table.ref("o", None) is None
    assert table.ref("o", edge) == "@" + digest(edge)
    assert len(table) == 1
    assert table.refs("o", None) is None
    assert table.refs("o", {"a": short, "b": edge}) == {"a": short, "b": "@" + digest(edge)}
    assert as_shipped(short) == short and as_shipped(edge) == "@" + "0" * 32


def test_a_text_held_twice_by_one_owner_goes_only_when_every_hold_is_released():
    table = ValueTable()
    text = "t" * 300
    table.ref("a", text)
    table.ref("a", text)
    table.ref("b", text)
    table.release("a")
    assert table.get(digest(text)) == text
    table.release("nobody")  # an owner that holds nothing
    table.release("b")
    assert table.get(digest(text)) is None and len(table) == 0


def test_a_plain_text_an_output_wrote_may_be_named_by_a_later_text_of_the_same_output():
    table = ValueTable()
    long, short = "[" + "7," * 200 + "7]", "[1]"
    assert table.expand("o", short) == short and len(table) == 0  # short texts are never named
    assert table.expand("o", long) == long and len(table) == 1
    assert table.expand("o", "@" + digest(long)) == long
    table.release("o")
    assert len(table) == 0
    edge = "x" * MIN_REF
    table.expand("o", edge)
    assert table.get(digest(edge)) == edge


def test_a_composition_joins_literals_and_slices_of_held_texts():
    table = ValueTable()
    base = "[" + "1," * 200 + "1]"
    table.ref("o", base)
    key = digest(base)
    text = "+" + json.dumps(["<", [key, 1, 5], ">"])
    assert table.expand("o", text, "the output value") == "<1,1,>"
    assert table.get(digest("<1,1,>")) == "<1,1,>"  # held for the owner, even short
    assert table.expand("o", "+[]") == ""


@pytest.mark.parametrize(
    "part",
    [[1, 0, 2], ["k", 0], ["k", 0, 1, 2], ["k", "0", 2], ["k", 0, None], {"k": 1}, 5, None],
)
def test_a_malformed_part_of_a_composition_is_named(part):
    table = ValueTable()
    with pytest.raises(RefError, match=r"^state key 'k' of node \"N\": a malformed part"):
        table.expand("o", "+" + json.dumps([part]), "state key 'k' of node \"N\"")


def test_an_error_names_the_text_and_the_node_it_came_from():
    table = ValueTable()
    missing = "@" + "ab" * 16
    with pytest.raises(
        RefError, match=r'^the jump to "B" of node "A" names value abababababab\.\.\., which this run does not hold'
    ):
        expand_output({"jump": {"node": "B", "input": missing}}, table, "o", "A")
    with pytest.raises(RefError, match=r'^Send 1 of node "A" names'):
        expand_output({"sends": [{"input": "1"}, {"input": missing}]}, table, "o", "A")
    with pytest.raises(RefError, match=r"^the output value of node \"A\": a malformed composition '\+\{'"):
        expand_output({"value": "+{"}, table, "o", "A")
    with pytest.raises(RefError, match=r"^state key '' of node \"A\" names"):
        expand_output({"writes": {"": missing}}, table, "o", "A")


def test_the_texts_of_an_output_come_in_one_order_jump_sends_writes_value():
    plain = {
        "value": "v",
        "writes": {"b": "wb", "a": "wa"},
        "sends": [{"input": "s0"}, {"input": "s1"}],
        "jump": {"node": "J", "input": "j"},
    }
    seen = [(text, key, what) for text, _, key, what in output_texts(plain)]
    assert seen == [
        ("j", None, 'the jump to "J"'),
        ("s0", None, "Send 0"),
        ("s1", None, "Send 1"),
        ("wb", "b", "state key 'b'"),
        ("wa", "a", "state key 'a'"),
        ("v", None, "the output value"),
    ]
    for text, put, _, _ in output_texts(plain):
        put(text.upper())
    assert plain == {
        "value": "V",
        "writes": {"b": "WB", "a": "WA"},
        "sends": [{"input": "S0"}, {"input": "S1"}],
        "jump": {"node": "J", "input": "J"},
    }
    assert list(output_texts({"jump": None, "sends": None, "writes": None})) == []


def test_the_query_answer_gives_what_fits_the_budget_exactly_and_defaults_to_300k():
    table = ValueTable()
    keys = [table.ref("o", c * 100_000)[1:] for c in "abcd"]
    assert list(table.answer(keys)) == keys[:3]  # 300,000 characters: the fourth would pass it
    assert list(table.answer(keys, budget=200_000)) == keys[:2]
    assert list(table.answer(keys, budget=199_999)) == keys[:1]
    assert list(table.answer(["missing", keys[1]], budget=1)) == keys[1:2]


def test_a_workers_cache_keeps_the_recently_used_texts_within_its_limit():
    assert ValueCache().limit == 64 * 1024 * 1024
    cache = ValueCache(limit=100)
    cache.put("a", "a" * 25)
    cache.put("b", "b" * 25)
    cache.put("c", "c" * 26)  # over a quarter of the limit: never kept
    assert cache.get("c") is None
    cache.put("d", "d" * 25)
    cache.put("e", "e" * 25)
    assert [cache.get(k) is not None for k in "abde"] == [True, True, True, True]
    cache.get("a")  # a is now the most recent: b goes first
    cache.put("f", "f" * 25)
    assert cache.get("b") is None and cache.get("a") == "a" * 25 and cache.get("f") == "f" * 25
    cache.put("a", "x" * 25)  # a known key is not replaced
    assert cache.get("a") == "a" * 25
    full = ValueCache(limit=100)
    for k in "pqrs":
        full.put(k, k * 25)
    assert all(full.get(k) for k in "pqrs")  # exactly the limit: all kept


def test_wanted_lists_each_named_digest_once_in_order():
    assert wanted(["@b", None, "[1]", "@a", "@b", "+[]"]) == ["b", "a"]


def test_a_node_input_ships_long_texts_as_references_and_the_activity_opens_them():
    table = ValueTable()
    long = "[" + "9," * 200 + "9]"
    arg = {"input": long, "run_input": long, "state": {"k": long, "s": "1"}, "history": {"A": long}, "x": 1}
    shipped = pack_input(arg, table, "o")
    ref = "@" + digest(long)
    assert shipped == {
        "input": ref,
        "run_input": ref,
        "state": {"k": ref, "s": "1"},
        "history": {"A": ref},
        "x": 1,
        "refs": 1,
    }
    assert "refs" not in arg  # the caller's dict is not changed
    assert input_refs(shipped) == [digest(long)]
    assert input_refs({"input": "1", "run_input": None, "state": None, "history": {"B": ref}}) == [digest(long)]
    opened = Unpacked(shipped, {digest(long): long})
    assert opened.plain == {**arg, "state": {"k": long, "s": "1"}}
    assert opened.bases == {INPUT: digest(long), "k": digest(long)}
    unpacked_none = Unpacked({"input": "1", "run_input": None, "state": None, "history": None}, {})
    assert unpacked_none.plain == {"input": "1", "run_input": None, "state": None, "history": None}
    assert unpacked_none.bases == {}


def test_an_output_grows_from_the_base_of_its_own_state_key():
    a, b = "[" + "1," * 150 + "1]", "[" + "1," * 180 + "1]"
    opened = Unpacked({"input": "@" + digest(a), "state": {"k": "@" + digest(b)}}, {digest(a): a, digest(b): b})
    grown_b = b[:-1] + ",5]"
    grown_input = a[:-1] + ",6]"
    out = opened.pack({"value": grown_input, "writes": {"k": grown_b}})
    assert json.loads(out["writes"]["k"][1:])[0] == [digest(b), 0, len(b) - 1]
    assert json.loads(out["value"][1:])[0][0] in (digest(a), digest(b))
    table = ValueTable()
    table.ref("o", a)
    table.ref("o", b)
    assert expand_output(out, table, "o", "N") == {"value": grown_input, "writes": {"k": grown_b}}


def test_a_composer_ships_short_texts_as_they_are_and_known_texts_as_references():
    known = "k" * 300
    composer = Composer({digest(known): known})
    assert composer.write("short") == "short"
    assert composer.write(known) == "@" + digest(known)
    fresh = "z" * 300  # shares nothing: shipped whole, and known from now on
    assert composer.write(fresh) == fresh
    assert composer.write(fresh) == "@" + digest(fresh)
    assert list(composer.produced()) == [(digest(fresh), fresh)]


def test_a_text_holding_an_earlier_text_of_the_output_names_it():
    composer = Composer({})
    inner = json.dumps(["m" * 300])
    assert composer.write(inner) == inner
    outer = '{"next": ' + inner + ', "x": 1}'
    packed = composer.write(outer)
    assert json.loads(packed[1:]) == ['{"next": ', [digest(inner), 0, len(inner)], ', "x": 1}']
    ends = "<<" + inner
    assert json.loads(composer.write(ends + " " * 300)[1:])[:2] == ["<<", [digest(inner), 0, len(inner)]]
    last = composer.write("pre" + inner + "!" * 260)
    assert json.loads(last[1:])[1] == [digest(inner), 0, len(inner)]


def test_the_newest_earlier_text_is_named_first():
    composer = Composer({})
    first = json.dumps(["a" * 300])
    second = json.dumps([json.loads(first)[0], "b" * 200])
    composer.write(first)
    composer.write(second)
    packed = composer.write("{" + second + "}" + " " * 10)
    assert json.loads(packed[1:])[1][0] == digest(second)


def test_only_received_texts_of_min_shared_characters_or_more_are_grown_from():
    short = "[" + "5" * (MIN_SHARED - 3) + ","  # MIN_SHARED - 1 characters
    text = short + "6" * 300 + "]"
    assert Composer({digest(short): short}).write(text) == text
    edge = "[" + "5" * (MIN_SHARED - 2) + ","  # MIN_SHARED characters
    text = edge + "6" * 300 + "]"
    assert json.loads(Composer({digest(edge): edge}).write(text)[1:]) == [
        [digest(edge), 0, MIN_SHARED],
        text[MIN_SHARED:],
    ]


def test_a_composition_no_shorter_than_its_text_is_not_used():
    base = "[" + "1," * 100 + "1]"
    text = base[:MIN_SHARED] + "x" * (MIN_REF - MIN_SHARED)  # shares MIN_SHARED characters
    packed = Composer({digest(base): base}).write(text)
    assert packed.startswith("+") and len(packed) < len(text)
    tight = base[:MIN_SHARED] + '"' * (MIN_REF - MIN_SHARED)  # every quote escaped: the literal doubles
    assert Composer({digest(base): base}).write(tight) == tight


def test_a_write_taken_out_of_the_middle_of_a_received_text_is_a_slice_of_it():
    inner = "[" + "4," * 150 + "4]"
    received = '{"a": 1, "list": ' + inner + "}"
    composer = Composer({digest(received): received})
    packed = composer.write(inner)
    at = received.index(inner)
    assert json.loads(packed[1:]) == [[digest(received), at, at + len(inner)]]
    table = ValueTable()
    table.ref("o", received)
    assert table.expand("o", packed) == inner


def test_pack_output_writes_each_text_in_place_and_grows_writes_from_their_keys_base():
    base = "[" + "2," * 200 + "2]"
    composer = Composer({digest(base): base})
    plain = {"writes": {"k": base[:-1] + ",3]"}, "value": "1"}
    assert pack_output(plain, composer, {"k": digest(base)}) is plain
    assert plain["value"] == "1" and plain["writes"]["k"].startswith("+")


def test_common_prefix_of_equal_and_disjoint_texts():
    assert common_prefix("abc", "abc") == 3
    assert common_prefix("abc", "abd") == 2
    assert common_prefix("x", "y") == 0
    assert common_prefix("", "abc") == 0
    assert common_prefix("ab" * 100 + "c", "ab" * 100 + "d") == 200


def test_each_text_grows_from_its_own_base_when_two_received_texts_share_as_much():
    shared = "[" + "1," * 100 + '"'
    state_base, input_base = shared + 's"]', shared + 'i"]'  # the same 202 characters, then apart
    received = {digest(state_base): state_base, digest(input_base): input_base}  # the state's comes first
    opened = Unpacked({"input": "@" + digest(input_base), "state": {"k": "@" + digest(state_base)}}, received)
    value, write = shared + 'v", ' + "0" * 60 + "]", shared + 'w", ' + "0" * 60 + "]"
    out = opened.pack({"value": value, "writes": {"k": write}})
    assert out["value"] == "+" + json.dumps(
        [[digest(input_base), 0, len(shared)], value[len(shared) :]], separators=(",", ":")
    )
    assert out["writes"]["k"] == "+" + json.dumps(
        [[digest(state_base), 0, len(shared)], write[len(shared) :]], separators=(",", ":")
    )


def test_input_refs_reads_every_field_that_may_hold_a_reference():
    assert input_refs({"run_input": "@r"}) == ["r"]
    assert input_refs({"state": {"k": "@s"}}) == ["s"]
    assert input_refs({"history": {"A": "@h"}}) == ["h"]
    assert input_refs({"input": "@i", "run_input": "@r", "state": {"k": "@s"}, "history": {"A": "@h"}}) == [
        "i",
        "r",
        "s",
        "h",
    ]


def test_a_packed_inputs_holds_all_go_with_its_owner():
    table = ValueTable()
    a, b = "a" * 300, "b" * 300
    pack_input({"input": a, "run_input": b, "state": {"k": a}, "history": {"N": b}}, table, "o")
    assert len(table) == 2
    table.release("o")
    assert len(table) == 0


def test_errors_name_the_slice_and_the_reference_fully():
    table = ValueTable()
    missing = "ab" * 16
    with pytest.raises(RefError) as raised:
        table.expand("o", "+" + json.dumps([[missing, 0, 1]]), "the output value")
    assert str(raised.value) == (
        "the output value names value abababababab..., which this run does not hold (an output from a worker "
        "of another version of gecko-temporal?)"
    )
    with pytest.raises(RefError) as raised:
        table.expand("o", "+" + json.dumps([[1, 0, 2]]), "the output value")
    assert str(raised.value) == "the output value: a malformed part '[1, 0, 2]' of a composition"
    bad = "+[" + "x" * 200
    with pytest.raises(RefError) as raised:
        table.expand("o", bad)
    assert str(raised.value) == f": a malformed composition {bad[:80]!r}"


def test_the_query_answer_skips_keys_that_cannot_be_digests_and_defaults_to_300k_exactly():
    table = ValueTable()
    keys = [table.ref("o", c * n)[1:] for c, n in (("a", 100_000), ("b", 100_000), ("c", 100_001))]
    assert table.answer([["not", "hashable"], {"x": 1}, None]) == {}
    assert list(table.answer(keys)) == keys[:2]  # 300,001 characters would pass the default budget


def test_the_cache_counts_what_it_let_go():
    cache = ValueCache(limit=100)
    for k in "pqrs":
        cache.put(k, k * 25)
    cache.put("t", "t" * 25)  # p goes
    cache.put("u", "u" * 25)  # then q
    assert [cache.get(k) is None for k in "pqrstu"] == [True, True, False, False, False, False]


def test_a_composition_is_compact_json():
    base = "[" + "2," * 200 + "2]"
    text = base[:-1] + ",3]"
    packed = Composer({digest(base): base}).write(text)
    assert packed == "+" + '[["' + digest(base) + '",0,' + str(len(base) - 1) + '],",3]"]'


def test_a_text_ending_with_an_earlier_text_has_no_empty_tail():
    composer = Composer({})
    inner = json.dumps(["m" * 300])
    composer.write(inner)
    assert json.loads(composer.write("<<" + inner)[1:]) == ["<<", [digest(inner), 0, len(inner)]]


def test_a_write_taken_from_a_text_holding_it_twice_names_the_first():
    inner = "[" + "4," * 150 + "4]"
    received = '{"a": ' + inner + ', "b": ' + inner + "}"
    grown = inner[:-1] + ",5]"
    packed = Composer({digest(received): received}).write(grown)
    at = received.index(inner)
    assert json.loads(packed[1:]) == [[digest(received), at, at + len(inner) - 1], ",5]"]


def test_a_longer_match_in_another_received_text_wins_unless_the_preferred_one_covers_nearly_all():
    text = "[" + "7," * 150 + "7]"
    nearly = text[:-1] + "8" * 10  # shares all but the last character
    whole = text[:-1] + "]" + "9" * 10  # holds the whole text as its prefix
    received = {digest(nearly): nearly, digest(whole): whole}
    packed = Composer(received).write(text, prefer=digest(nearly))
    assert json.loads(packed[1:]) == [[digest(nearly), 0, len(text) - 1], "]"]  # good enough: looked no further
