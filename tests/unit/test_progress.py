from omnicheck.session import _Throughput


def test_throughput_lines_are_throttled():
    lines = []
    quiet = _Throughput("w4a4 speech_wer", lines.append, every=3600)
    for done in range(1, 11):
        quiet(done, 10)
    assert lines == []  # a short probe prints nothing
    chatty = _Throughput("w4a4 speech_wer", lines.append, every=0)
    chatty(4, 10)
    assert lines and lines[0].startswith("w4a4 speech_wer: 4/10 samples, ") and lines[0].endswith("/s")
