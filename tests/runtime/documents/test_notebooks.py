"""Jupyter notebooks are read as their cells, not as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from pgpt.runtime.documents.readers import read_document

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" * 20


def _notebook() -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Churn analysis\n", "\n", "We model churn per plan."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1,
         "source": ["# load the data\n", "df = load('data.csv')\n", "print('AUC on holdout:', auc)"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["AUC on holdout: 0.8731\n"]},
                     {"output_type": "display_data", "metadata": {},
                      "data": {"image/png": PNG, "text/plain": ["<Figure size 640x480 with 1 Axes>"]}}]},
        {"cell_type": "markdown", "metadata": {}, "source": "## Plans"},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "df.plan.value_counts()",
         "outputs": [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                      "data": {"text/plain": ["plan\n", "-----\n", "basic    120\n", "pro       45"],
                               "text/html": ["<table><tr><td>basic</td></tr></table>"]}},
                     {"output_type": "error", "ename": "KeyError", "evalue": "'region'", "traceback": ["..."]}]}]}


def test_a_notebook_is_read_as_its_cells_and_printed_text(tmp_path: Path) -> None:
    """Read as text, "AUC on holdout: 0.8731" came inside JSON syntax and a plot's base64 PNG was a
    passage of its own (t61)."""
    path = tmp_path / "churn.ipynb"
    path.write_text(json.dumps(_notebook(), indent=1))
    sections = read_document(path)
    text = "\n\n".join(s.text for s in sections)
    assert "AUC on holdout: 0.8731" in text and "We model churn per plan." in text
    assert "iVBORw0KGgo" not in text and '"cell_type"' not in text and "<Figure" not in text and "<table>" not in text
    by_heading = {s.heading: s.text for s in sections}
    assert "AUC on holdout: 0.8731" in by_heading["Churn analysis"]
    assert "# load the data" in by_heading["Churn analysis"]  # a code comment is no heading
    assert "basic    120" in by_heading["Churn analysis > Plans"]  # "-----" in the output underlines nothing
    assert "KeyError: 'region'" in by_heading["Churn analysis > Plans"]


def test_a_file_named_ipynb_that_is_not_a_notebook_is_read_as_text(tmp_path: Path) -> None:
    (tmp_path / "notes.ipynb").write_text("Not JSON: the meeting is on Friday.\n")
    (tmp_path / "list.ipynb").write_text('["a JSON list, not a notebook"]\n')
    assert read_document(tmp_path / "notes.ipynb")[0].text.strip() == "Not JSON: the meeting is on Friday."
    assert "a JSON list, not a notebook" in read_document(tmp_path / "list.ipynb")[0].text
