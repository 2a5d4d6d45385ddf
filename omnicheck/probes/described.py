"""What image_caption and video_describe share: media with reference texts, read from any supported layout,
scored by key-term recall, MiniLM similarity, CIDEr-D and emptiness. Each probe keeps its prompt, its layout
and its counterfactual in its own module."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from omnicheck.fixtures import fixture_dir, verify_manifest
from omnicheck.probes import common
from omnicheck.probes.base import Probe
from omnicheck.probes.cider import CiderD
from omnicheck.probes.readers import Layout, MediaSet, Record
from omnicheck.types import Sample


class DescribedProbe(Probe):
    fixtures: ClassVar[str]  # the bundled folder
    own_file: ClassVar[str]  # the bundled schema's JSONL name
    terms_field: ClassVar[str]  # key_objects | key_concepts
    recall_name: ClassVar[str]  # object_recall | concept_recall
    layout: ClassVar[Layout]
    reads_coco: ClassVar[bool] = False
    prompt: ClassVar[str]

    def media(self) -> MediaSet:
        if not hasattr(self, "_media"):
            from omnicheck.probes.readers.sources import described_media, own_media

            kind = self.modality.value
            if self.data:
                self._media = described_media(self.data, self.own_file, self.terms_field, self.layout, self.name,
                                              kind, coco=self.reads_coco)
            else:
                verify_manifest(self.fixtures)
                self._media = own_media(fixture_dir(self.fixtures) / self.own_file, self.terms_field, kind)
        return self._media

    def load_samples(self, tier: str) -> list[Sample]:
        return [self.sample(record, self.key_terms(record)) for record in self.select_media(self.media(), tier)]

    def sample(self, record: Record, key_terms: list[list[str]]) -> Sample:
        raise NotImplementedError

    def key_terms(self, record: Record) -> list[list[str]]:
        return [list(t) for t in record.key_terms] or common.derive_key_terms(record.texts)

    def meta(self, record: Record, key_terms: list[list[str]]) -> dict[str, Any]:
        derived = {} if record.key_terms else {"key_terms_derived": True}
        return {self.terms_field: key_terms, **derived}

    def score(self, sample: Sample, output: str) -> dict[str, float]:
        scores = common.description_scores(output, sample.target, sample.meta[self.terms_field], self.recall_name)
        scores["cider_d"] = round(self.cider().score(output, sample.target), 6)
        return scores

    def extra(self, sample: Sample, output: str) -> dict[str, Any]:
        return common.term_report(output, sample.meta[self.terms_field])

    def cider(self) -> CiderD:
        """Document frequencies over every reference set the probe read (not only the tier's), built once."""
        if not hasattr(self, "_cider"):
            self._cider = CiderD([r.texts for r in self.media().records])
        return self._cider

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "prompt": self.prompt, "references": self.media().digest(),
                "similarity": common.encoder_info()}


def media_path(record: Record) -> Path:
    return Path(record.media)  # type: ignore[arg-type] - files() and the bundled reader give paths
