"""Tests for autograder.text: student-shaped text made safe to keep and show."""

import json

from autograder import text as safe_text


def test_clean_replaces_unpaired_surrogates():
    """A lone surrogate (valid JSON, unencodable UTF-8) becomes U+FFFD; pairs never occur."""
    text = json.loads('"a\\ud800b\\udfffc"')
    assert safe_text.clean(text) == "a\ufffdb\ufffdc"
    safe_text.clean(text).encode("utf-8")


def test_cap_bounds_length_and_says_so():
    """A long string is cut to the limit with a note giving its full length."""
    out = safe_text.cap("x" * 100_000, 2000)
    assert len(out) < 2100 and "truncated: 100000 characters" in out
    assert safe_text.cap(out, 2000) == out  # cutting twice keeps the original length
    assert "truncated: 2050" in safe_text.cap("y" * 2050, 2000)
    assert safe_text.cap("short") == "short"


def test_fenced_markdown_shows_everything_as_code():
    """Student Markdown becomes a code block whose fence is longer than any run inside."""
    text = safe_text.fenced("<script>x</script>\n`````\n")
    assert text.startswith("``````text\n") and text.endswith("\n``````")


def test_names():
    """Safe names pass as they are; others are shown printable and short."""
    assert safe_text.is_safe_name("alice.b-1@x") and not safe_text.is_safe_name("a" * 200)
    assert not safe_text.is_safe_name("-x") and not safe_text.is_safe_name("a/b")
    odd = b"\xff\n".decode("utf-8", "surrogateescape")
    assert safe_text.display_name(odd) == "\ufffd\\n"
    assert len(safe_text.display_name("é" * 300)) < 130


def test_shown_escapes_control_and_bidi_characters():
    """ESC, BEL, CR, LF and the bidi overrides become visible escapes: a student's text can
    neither forge a log line nor rewrite the terminal."""
    out = safe_text.shown("a\x1b[2Jb\r\nc\u202ed\x07")
    assert out == "a\\x1b[2Jb\\r\\nc\\u202ed\\x07"
    assert all(ch.isprintable() for ch in out)
    assert safe_text.shown("é ok") == "é ok"
    assert "truncated" in safe_text.shown("x" * 5000, 100)


def test_shown_bounds_any_length_quickly():
    """A megabyte of escape characters comes out at the limit plus a note giving the full
    length, and cleaning twice changes nothing."""
    out = safe_text.shown("\x1b" * 2**20, 100)
    assert len(out) < 160 and out.startswith("\\x1b") and "truncated: 1048576" in out
    assert safe_text.shown(out, 100) == out


def test_plot_label_is_never_mathtext():
    """A name made of mathtext, control characters or a leading underscore is drawn as the
    text it is (escaped), in a legend, without an error."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["$\\foo$", "$\\hat{$^\\left(\\frac$ 100%", "a\x1b[2J\u202e$x", "_hidden"]
    labels = [safe_text.plot_label(n) for n in names]
    assert labels[0] == r"\$\foo\$" and labels[3] == " _hidden"
    with matplotlib.rc_context({"text.usetex": False}):
        fig, ax = plt.subplots()
        for label in labels:
            ax.plot([0, 1], label=label)
        legend = ax.legend()
        fig.savefig(io.BytesIO(), format="png")
        texts = [t.get_text() for t in legend.get_texts()]
        plt.close(fig)
    assert len(texts) == 4 and all(ch.isprintable() for t in texts for ch in t)
