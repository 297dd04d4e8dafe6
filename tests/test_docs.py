"""The model documentation ships with the repository: shipped profiles and presets cite
docs/model.md (by sections that exist) or public sources, never the unshipped design notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner import catalog
from planner.workload import PRESETS

REPO = Path(__file__).resolve().parent.parent
MODEL_DOC = REPO / "docs" / "model.md"

_HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s+\S", re.MULTILINE)
# "docs/model.md §2.3" or "docs/model.md §2.2, §12.1" (every § after the file name counts)
_CITATION = re.compile(r"docs/model\.md((?:\s*(?:,|;|and)?\s*§\s*\d+(?:\.\d+)*)+)")
_SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)")


def doc_sections() -> set[str]:
    """Section numbers of docs/model.md's numbered headings ("## 2. …" → "2", "### 2.3 …")."""
    return set(_HEADING.findall(MODEL_DOC.read_text(encoding="utf-8")))


def cited_sections(text: str) -> list[str]:
    """Every docs/model.md section a text cites."""
    return [s for run in _CITATION.findall(text) for s in _SECTION.findall(run)]


def _source_notes() -> list[tuple[str, str]]:
    """(where, text) for every source note that ships: GPU and model profiles, presets."""
    notes: list[tuple[str, str]] = []
    for name in catalog.gpu_names():
        gpu = catalog.load_gpu(name)
        notes += [(f"hardware_profiles/{name}.yaml sources.{k}", v) for k, v in gpu.sources.items()]
    for name in catalog.model_names():
        notes.append((f"model_profiles/{name}.yaml source", catalog.load_model(name).source))
    notes += [(f"workload preset {name} source", p.source) for name, p in PRESETS.items()]
    return notes


NOTES = _source_notes()


def test_model_doc_has_numbered_sections() -> None:
    sections = doc_sections()
    for top in ("1", "2", "12", "13"):
        assert top in sections, f"docs/model.md lacks section {top}"
    headings = _HEADING.findall(MODEL_DOC.read_text(encoding="utf-8"))
    assert len(headings) == len(set(headings)), "docs/model.md repeats a section number"


def test_citation_parser() -> None:
    text = "estimate (docs/model.md §2.2, §12.1); see DistServe §4 and docs/model.md §7"
    assert cited_sections(text) == ["2.2", "12.1", "7"]
    assert cited_sections("no citation here, §3") == []


@pytest.mark.parametrize(("where", "text"), NOTES, ids=[w for w, _ in NOTES])
def test_source_note_is_shipped(where: str, text: str) -> None:
    assert text.strip(), f"{where} is empty"
    assert "design.md" not in text.lower(), f"{where} cites the unshipped DESIGN.md: {text!r}"
    missing = [s for s in cited_sections(text) if s not in doc_sections()]
    assert not missing, f"{where} cites docs/model.md §{', §'.join(missing)}, which do not exist"


def test_code_cites_existing_doc_sections() -> None:
    """Docstrings and comments that cite docs/model.md name sections that exist."""
    sections = doc_sections()
    bad = []
    for path in sorted((REPO / "planner").rglob("*.py")):
        for s in cited_sections(path.read_text(encoding="utf-8")):
            if s not in sections:
                bad.append(f"{path.relative_to(REPO)}: §{s}")
    assert not bad, "citations of missing docs/model.md sections: " + "; ".join(bad)
