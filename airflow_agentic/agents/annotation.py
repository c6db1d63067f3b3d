"""The Annotation & Synthesis agent: fills the gaps in a training pool before training. No Airflow here.

Tools: ``auto_label`` (the champion labels the unlabelled rows it is sure of, provenance ``auto``),
``flag_label_issues`` (given labels that out-of-fold predictions contradict, the cleanlab idea; flagged, not changed),
``synthesize_minority`` (SMOTE / SMOTENC rows for rare classes, marked ``_synthetic``), ``request_human_labels``
(the rows nobody could label wait for a person; the ``AnnotationOperator`` sends them to Label Studio).

Only the training pool is touched: the rows that gate a model are real, human or given, labels the caller keeps
apart, so neither an automatic label nor a synthetic row is ever used to evaluate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.agents.decision import Decision, PlanningContext, finish
from airflow_agentic.agents.loop import Agent
from airflow_agentic.agents.tools import Risk, Toolset, tool

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

LABEL_SOURCE_COLUMN = "_label_source"


class AnnotationAgent(Agent):
    """Label what can be labelled, flag doubtful labels, add synthetic rows for rare classes.

    :param pool: the training pool (features, ``target`` with nulls for unlabelled rows, optional ``id_column``).
    :param champion: a fitted model with ``predict_proba`` and ``classes_`` (None: no automatic labels).
    :param threshold: minimum top-class probability for an automatic label.
    :param rare_share: a class with fewer rows than this share of the largest class is rare.
    :param check_label_quality: run the out-of-fold label check (costs a cross-validation).
    """

    name = "annotation"
    default_goal = ("give the training pool as many trustworthy labels as possible: automatic labels only where the "
                    "champion is confident, synthetic rows only for rare classes and marked, the rest to a person")

    def __init__(self, pool: pd.DataFrame, *, target: str, champion: Any = None, champion_name: str = "champion",
                 id_column: str | None = "row_id", threshold: float = 0.9, rare_share: float = 0.2,
                 check_label_quality: bool = False, min_rows_for_synthesis: int = 6, seed: int = 0):
        self.pool = pool.reset_index(drop=True).copy()
        self.target = target
        self.champion = champion
        self.champion_name = champion_name
        self.id_column = id_column if id_column and id_column in pool.columns else None
        self.threshold = float(threshold)
        self.rare_share = float(rare_share)
        self.check_label_quality = check_label_quality
        self.min_rows_for_synthesis = int(min_rows_for_synthesis)
        self.seed = seed
        if LABEL_SOURCE_COLUMN not in self.pool.columns:
            self.pool[LABEL_SOURCE_COLUMN] = np.where(self.pool[target].notna(), "given", None)
        self.flagged: list[Any] = []
        self.waiting: list[Any] = []
        self.synthetic_rows = 0

    # -- what the agent sees --------------------------------------------------------------------------------------
    def features(self) -> list[str]:
        from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN

        skip = {self.target, self.id_column, LABEL_SOURCE_COLUMN, SYNTHETIC_COLUMN}
        return [c for c in self.pool.columns if c not in skip]

    def class_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.pool[self.target].dropna().value_counts().items()}

    def rare_classes(self) -> list[str]:
        counts = self.class_counts()
        if len(counts) < 2:
            return []
        largest = max(counts.values())
        return [c for c, n in counts.items() if n < self.rare_share * largest and n >= 2]

    def observe(self) -> dict[str, Any]:
        sources = self.pool[LABEL_SOURCE_COLUMN].fillna("none").value_counts()
        return {"rows": int(len(self.pool)), "unlabelled": int(self.pool[self.target].isna().sum()),
                "label_sources": {str(k): int(v) for k, v in sources.items()},
                "class_counts": self.class_counts(), "rare_classes": self.rare_classes(),
                "champion": self.champion_name if self.champion is not None else None,
                "threshold": self.threshold, "flagged": len(self.flagged), "synthetic_rows": self.synthetic_rows,
                "waiting_for_people": len(self.waiting)}

    # -- tools ----------------------------------------------------------------------------------------------------
    def toolset(self) -> Toolset:
        @tool(risk=Risk.WRITE)
        def auto_label(threshold: float | None = None) -> dict:
            """Label unlabelled rows with the champion where its top class probability reaches the threshold."""
            from airflow_agentic.data.labels import auto_label as label_rows

            if self.champion is None:
                raise ValueError("no champion to label with")
            limit = self.threshold if threshold is None else max(float(threshold), 0.5)
            todo = self.pool.index[self.pool[self.target].isna()]
            if not len(todo):
                return {"auto": 0, "needs_human": 0, "threshold": limit}
            result = label_rows(self.champion, self.pool.loc[todo, self.features()], threshold=limit,
                                row_ids=list(todo))
            labelled = [(i, label) for i, label in zip(todo, result.labels) if label is not None]
            for index, label in labelled:
                self.pool.at[index, self.target] = label
                self.pool.at[index, LABEL_SOURCE_COLUMN] = "auto"
            return {"auto": len(labelled), "needs_human": len(result.human_rows), "threshold": limit}

        @tool(risk=Risk.READ)
        def flag_label_issues() -> dict:
            """Given labels that out-of-fold predictions contradict strongly (flagged for review, not changed)."""
            from airflow_agentic.data.labels import label_issues

            given = self.pool[self.pool[LABEL_SOURCE_COLUMN] == "given"]
            ids = given[self.id_column].tolist() if self.id_column else given.index.tolist()
            found = label_issues(given[self.features()], given[self.target].to_numpy(), row_ids=ids,
                                 cv=min(5, max(2, int(given[self.target].value_counts().min()))))
            self.flagged = found["row_id"].tolist()
            return {"flagged": len(self.flagged), "examples": found.head(10).astype(str).to_dict(orient="records")}

        @tool(risk=Risk.WRITE)
        def synthesize_minority() -> dict:
            """SMOTE (SMOTENC with categorical columns) rows for the rare classes, marked as synthetic."""
            from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN, synthesize_minority as smote

            rare = self.rare_classes()
            if not rare:
                return {"added": 0, "classes": []}
            labelled = self.pool[self.pool[self.target].notna()]
            counts = labelled[self.target].value_counts()
            # Up to the rare share of the largest class: enough to be learnt, not enough to drown the real rows.
            goal = int(np.ceil(self.rare_share * counts.max()))
            strategy = {cls: max(goal, int(n)) for cls, n in counts.items() if str(cls) in rare}
            grown = smote(labelled, self.target, sampling_strategy=strategy, random_state=self.seed,
                          id_column=self.id_column, exclude=(LABEL_SOURCE_COLUMN,))
            new = grown[grown[SYNTHETIC_COLUMN]].copy()
            new[LABEL_SOURCE_COLUMN] = "synthetic"
            if SYNTHETIC_COLUMN not in self.pool.columns:
                self.pool[SYNTHETIC_COLUMN] = False
            import pandas as pd

            self.pool = pd.concat([self.pool, new[self.pool.columns]], ignore_index=True)
            self.pool[SYNTHETIC_COLUMN] = self.pool[SYNTHETIC_COLUMN].fillna(False).astype(bool)
            self.synthetic_rows += len(new)
            return {"added": int(len(new)), "classes": rare, "goal_per_class": goal}

        @tool(risk=Risk.WRITE)
        def request_human_labels(reason: str = "") -> dict:
            """Set the rows nobody could label aside for a person (the AnnotationOperator sends them to Label
            Studio); they stay out of this training."""
            todo = self.pool[self.pool[self.target].isna()]
            self.waiting = todo[self.id_column].tolist() if self.id_column else todo.index.tolist()
            return {"waiting": len(self.waiting), "reason": reason}

        return Toolset.of([auto_label, flag_label_issues, synthesize_minority, request_human_labels])

    # -- the rule policy ------------------------------------------------------------------------------------------
    def rule_policy(self, ctx: PlanningContext) -> Decision:
        unlabelled = int(self.pool[self.target].isna().sum())
        if unlabelled and self.champion is not None and ctx.last("auto_label") is None:
            return Decision("auto_label", {}, f"{unlabelled} unlabelled rows: the champion labels the sure ones")
        if self.check_label_quality and ctx.last("flag_label_issues") is None and \
                int((self.pool[LABEL_SOURCE_COLUMN] == "given").sum()) >= 20:
            return Decision("flag_label_issues", {}, "check the given labels against out-of-fold predictions")
        rare = self.rare_classes()
        if rare and ctx.last("synthesize_minority") is None and \
                len(self.pool[self.pool[self.target].notna()]) >= self.min_rows_for_synthesis:
            return Decision("synthesize_minority", {}, f"rare classes {rare} below {self.rare_share:.0%} of the "
                                                       f"largest class")
        if int(self.pool[self.target].isna().sum()) and ctx.last("request_human_labels") is None:
            return Decision("request_human_labels", {"reason": "no confident automatic label"},
                            "what is left needs a person")
        return finish("training pool ready")

    def result(self) -> dict[str, Any]:
        sources = self.pool[LABEL_SOURCE_COLUMN].fillna("none").value_counts()
        return {"rows": int(len(self.pool)), "label_sources": {str(k): int(v) for k, v in sources.items()},
                "synthetic_rows": self.synthetic_rows, "flagged": [str(x) for x in self.flagged[:100]],
                "waiting_for_people": len(self.waiting), "class_counts": self.class_counts()}

    def training_rows(self) -> pd.DataFrame:
        """The labelled pool, synthetic rows included (marked); nothing unlabelled."""
        return self.pool[self.pool[self.target].notna()].reset_index(drop=True)
