"""The terminal's failing-verdict lines: one reason shared by a variant's probes is printed once."""

from omnicheck.report.terminal import verdict_lines


def _verdict(variant, probe, status, reason):
    return {"variant": variant, "probe": probe, "status": status, "message": f"{probe} on {variant}: {reason}"}


def test_probes_refused_for_one_reason_share_a_line_and_other_failures_keep_their_own():
    refused = "refused before loading (omnicheck inspect): ignore-name-mismatch"
    document = {"verdicts": [
        _verdict("w4a4", "gsm8k", "ERROR", refused),
        _verdict("w4a4", "image_caption", "ERROR", refused),
        _verdict("vision", "image_caption", "BROKEN", "concept_recall 0.8 vs 0.1"),
        _verdict("vision", "video_describe", "BROKEN", "concept_recall 0.8 vs 0.2"),
        _verdict("vision", "ifeval", "PASS", "fine"),
    ]}
    lines = verdict_lines(document)
    assert lines == [
        f"  w4a4 gsm8k, image_caption: ERROR: {refused}",
        "  vision image_caption: BROKEN: image_caption on vision: concept_recall 0.8 vs 0.1",
        "  vision video_describe: BROKEN: video_describe on vision: concept_recall 0.8 vs 0.2",
    ]
