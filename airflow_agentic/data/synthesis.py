"""Synthesis for rare classes (imbalanced-learn SMOTE / SMOTENC) and a pluggable text generator interface.

Every synthetic row carries ``_synthetic=True``; :func:`evaluation_rows` drops them, so synthetic data never reaches
an evaluation or a test split.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SYNTHETIC_COLUMN = "_synthetic"


def synthesize_minority(frame: "pd.DataFrame", target: str, *, categorical: list[str] | None = None,
                        sampling_strategy: Any = "auto", k_neighbors: int = 5, random_state: int = 0,
                        id_column: str | None = None, exclude: tuple[str, ...] = ()) -> "pd.DataFrame":
    """Original rows (``_synthetic=False``) followed by SMOTE/SMOTENC rows for the rare classes (``True``).

    Categorical feature columns (given, or object/category dtype) switch to SMOTENC. Classes too small for the
    neighbour search are left alone; ``k_neighbors`` shrinks to what the smallest usable class allows. Synthetic
    rows get a null id (``id_column``) because they correspond to no input row.
    """
    import pandas as pd

    skip = {target, SYNTHETIC_COLUMN, *exclude} | ({id_column} if id_column else set())
    feature_cols = [c for c in frame.columns if c not in skip]
    base = frame.copy()
    if SYNTHETIC_COLUMN not in base.columns:
        base[SYNTHETIC_COLUMN] = False
    real = base[~base[SYNTHETIC_COLUMN].astype(bool)]
    counts = real[target].value_counts()
    if len(counts) < 2:
        return base.reset_index(drop=True)
    usable = counts[counts >= 2]
    k = int(max(1, min(k_neighbors, usable.min() - 1)))
    majority = int(counts.max())
    if sampling_strategy == "auto":
        strategy = {cls: majority for cls, n in usable.items() if n < majority}
    elif isinstance(sampling_strategy, dict):
        strategy = {cls: n for cls, n in sampling_strategy.items() if cls in usable.index}
    else:
        strategy = sampling_strategy
    if isinstance(strategy, dict) and not strategy:
        return base.reset_index(drop=True)
    train = real[real[target].isin(usable.index)]
    X = train[feature_cols]
    y = train[target].to_numpy()
    from airflow_agentic.data.findings import is_text_or_category

    # Dtype-agnostic: pandas 3 stores text as ``str``, pandas 2 as ``object``.
    cats = list(categorical) if categorical is not None else [
        c for c in feature_cols if is_text_or_category(X[c].dtype)]
    if cats:
        from imblearn.over_sampling import SMOTENC

        sampler = SMOTENC(categorical_features=[feature_cols.index(c) for c in cats], k_neighbors=k,
                          sampling_strategy=strategy, random_state=random_state)
    else:
        from imblearn.over_sampling import SMOTE

        sampler = SMOTE(k_neighbors=k, sampling_strategy=strategy, random_state=random_state)
    X_res, y_res = sampler.fit_resample(X, y)
    new = pd.DataFrame(np.asarray(X_res)[len(X):], columns=feature_cols)
    for c in feature_cols:
        try:
            new[c] = new[c].astype(X[c].dtype)
        except (TypeError, ValueError):
            pass
    new[target] = np.asarray(y_res)[len(X):]
    if id_column and id_column in base.columns:
        new[id_column] = pd.array([None] * len(new), dtype="Int64" if base[id_column].dtype.kind in "iu" else object)
    new[SYNTHETIC_COLUMN] = True
    out = pd.concat([base, new[[c for c in base.columns if c in new.columns]]], ignore_index=True)
    out[SYNTHETIC_COLUMN] = out[SYNTHETIC_COLUMN].astype(bool)
    return out


def evaluation_rows(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Only real rows: synthetic ones never count in an evaluation."""
    if SYNTHETIC_COLUMN not in frame.columns:
        return frame
    return frame[~frame[SYNTHETIC_COLUMN].astype(bool)]


@runtime_checkable
class Generator(Protocol):
    """A text generator (an LLM behind any client): ``generate(prompt, n) -> n strings``."""

    def generate(self, prompt: str, n: int, **kwargs: Any) -> list[str]: ...


class CallableGenerator:
    """Wrap any callable ``fn(prompt, n, **kw) -> list[str]`` (or ``fn(prompt) -> str``, called n times)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def generate(self, prompt: str, n: int, **kwargs: Any) -> list[str]:
        try:
            out = self.fn(prompt, n, **kwargs)
        except TypeError:
            out = [self.fn(prompt) for _ in range(n)]
        if isinstance(out, str):
            out = [out]
        return [str(x) for x in list(out)[:n]]


class SynthesisError(RuntimeError):
    """A generator could not produce rows (endpoint down, refused, or answered nothing usable)."""


_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


class LLMTextGenerator:
    """Text rows from a chat-completions endpoint (the `openai` client of an ``agentic_llm`` connection:
    ``AgenticLLMHook(conn_id).text_generator()``). One example per answer line; list markers are stripped. Asks
    again, at most ``max_calls`` times in all, while fewer than ``n`` usable lines came back."""

    SYSTEM = ("You write synthetic training examples for a text classifier. Answer with the examples only, one per "
              "line, without numbering or commentary.")

    def __init__(self, client: Any, model: str, *, temperature: float = 0.8, max_calls: int = 3):
        self.client = client
        self.model = model
        self.temperature = temperature
        self.max_calls = max_calls
        self.calls = 0

    def generate(self, prompt: str, n: int, **kwargs: Any) -> list[str]:
        texts: list[str] = []
        seen: set[str] = set()
        for _ in range(self.max_calls):
            if len(texts) >= n:
                break
            self.calls += 1
            try:
                response = self.client.chat.completions.create(
                    model=self.model, temperature=self.temperature,
                    messages=[{"role": "system", "content": self.SYSTEM}, {"role": "user", "content": prompt}])
                content = response.choices[0].message.content or ""
            except Exception as exc:  # noqa: BLE001 - any client error: say which endpoint and why
                raise SynthesisError(f"text generation failed on model {self.model!r}: {type(exc).__name__}: "
                                     f"{exc}") from exc
            for line in content.splitlines():
                text = _LIST_MARKER.sub("", line).strip()
                if text and text not in seen:
                    seen.add(text)
                    texts.append(text)
        return texts[:n]


DEFAULT_PROMPT = ("Write {n} new, varied examples of text labelled '{label}', one per line, in the style of:\n"
                  "{examples}")


def generate_text_rows(generator: Generator | Callable[..., Any], examples: "pd.DataFrame", *, text_column: str,
                       target: str, label: Any, n: int, prompt_template: str = DEFAULT_PROMPT,
                       max_examples: int = 5) -> "pd.DataFrame":
    """``n`` synthetic text rows for ``label`` from a generator; marked ``_synthetic=True``."""
    import pandas as pd

    if not isinstance(generator, Generator):
        generator = CallableGenerator(generator)
    shots = examples.loc[examples[target] == label, text_column].head(max_examples).astype(str).tolist()
    prompt = prompt_template.format(n=n, label=label, examples="\n".join(f"- {s}" for s in shots))
    texts = [t.strip() for t in generator.generate(prompt, n) if t and t.strip()][:n]
    if not texts:
        raise SynthesisError(f"the generator returned no usable text for label {label!r}: nothing was added")
    return pd.DataFrame({text_column: texts, target: [label] * len(texts), SYNTHETIC_COLUMN: [True] * len(texts)})
