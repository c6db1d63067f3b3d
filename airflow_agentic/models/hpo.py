"""Hyperparameter search with Optuna: seeded TPE, pruning on intermediate scores, warm start from the champion,
storages for one process (SQLite), several processes on one machine (journal file) or several machines (RDB URL),
and one nested MLflow run per trial.

Defaults aim at "reach the best score soon" on CV folds (benchmarks/hpo_efficiency.py): the first trial is the
family's default setting, and the best-gap pruner stops a trial as soon as it cannot plausibly catch up with the best
trial on the same folds. `HPOConfig.cost_weight` trades score for fit cost (objective given up per doubling of a
trial's fit CPU time); it is off by default because the best settings are often the expensive ones.

`run_trials` is written to be called from several processes at once on the same study (one per mapped Airflow task):
each call loads the study, runs its share of trials and returns what it did plus the study's best so far.
`run_planned_trials` is the reproducible variant: a fixed plan of settings, split between the workers, so the
study's best is the same whether 1 or N workers ran it, in whatever order.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.families import ModelFamily, get_family

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

JOURNAL_SCHEME = "journal://"
PLAN_INDEX = "plan_index"  # user attribute of a planned trial: its place in the plan
JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


@dataclass
class HPOConfig:
    """How trials are scored, sampled and pruned.

    `cost_weight`: objective units given up per doubling of a trial's fit CPU seconds per fold. Being a log, a
    faster or slower machine shifts every trial's value by the same constant and changes no ranking; 0 turns it off.
    `cost_penalty`: objective units per mean fit (wall) second per fold, linear and machine-dependent; default off.
    The reported `score` of a trial is always the plain metric.
    """

    metric: str = "roc_auc"
    cv_folds: int = 3
    sampler: str = "tpe"  # "tpe" | "random"
    pruner: str = "best_gap"  # "best_gap" | "median" | "successive_halving" | "none"
    prune_on: str = "folds"  # "folds": running CV mean per fold; "stages": boosting stages on a holdout split
    n_stages: int = 4
    validation_fraction: float = 0.25
    seed: int | None = 0
    eval_seed: int | None = None  # CV split and model random_state; None: `seed`. Fix it to compare studies.
    n_startup_trials: int = 5
    cost_weight: float = 0.0
    cost_penalty: float = 0.0
    start_from_defaults: bool = True  # first trial: the family's default parameters (unless warm-started)

    @property
    def evaluation_seed(self) -> int:
        """Seed of what a trial's score depends on (folds, model randomness), apart from the sampler's."""
        seed = self.seed if self.eval_seed is None else self.eval_seed
        return seed or 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HPOConfig:
        return cls(**data)


@dataclass
class TrialRecord:
    number: int
    state: str
    value: float | None
    score: float | None
    fit_seconds: float
    duration_seconds: float
    params: dict[str, Any]
    mlflow_run_id: str | None = None
    fit_cpu_seconds: float = 0.0


@dataclass
class HPOResult:
    """What one `run_trials` call did (its trials) and where the whole study stands (best over all workers)."""

    study_name: str
    family: str
    worker_id: int
    best_params: dict[str, Any] | None
    best_score: float | None
    best_value: float | None
    best_trial_number: int | None
    n_complete: int
    n_pruned: int
    n_failed: int
    wall_seconds: float
    total_fit_seconds: float
    trials: list[TrialRecord] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_trial_cost_seconds(self) -> float:
        return self.total_fit_seconds / len(self.trials) if self.trials else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean_trial_cost_seconds"] = self.mean_trial_cost_seconds
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HPOResult:
        data = {k: v for k, v in data.items() if k != "mean_trial_cost_seconds"}
        data["trials"] = [TrialRecord(**t) for t in data.get("trials", [])]
        return cls(**data)


# -- storage, sampler, pruner, study --------------------------------------------------------------------------------
def resolve_storage(storage: Any = None) -> Any:
    """None -> the configured storage (``airflow_agentic.config.optuna_storage``: ``[agentic] optuna_storage``, else
    a SQLite file under ``$AIRFLOW_HOME/agentic``, the same for every task); `journal:///path` or a *.log/*.journal path -> JournalStorage on a
    file (parallel processes on one machine); `sqlite:///...`, `postgresql://...` etc. -> RDBStorage; a storage object
    passes through."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is None:
        from airflow_agentic.config import optuna_storage

        storage = optuna_storage()
    if not isinstance(storage, str):
        return storage
    if storage.startswith(JOURNAL_SCHEME) or (("://" not in storage) and storage.endswith(JOURNAL_SUFFIXES)):
        path = storage[len(JOURNAL_SCHEME):] if storage.startswith(JOURNAL_SCHEME) else storage
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in storage:
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(storage).resolve()}"
    storage = _postgres_driver(storage)
    engine_kwargs = {} if storage.startswith("sqlite") else {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs, heartbeat_interval=None)


def _postgres_driver(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use psycopg2 when only that is installed."""
    import importlib.util

    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare) and importlib.util.find_spec("psycopg") is None \
                and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def make_sampler(name: str = "tpe", seed: int | None = 0, n_startup_trials: int = 5) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                          constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use 'tpe' or 'random'")


def make_pruner(name: str = "best_gap", n_startup_trials: int = 5) -> optuna.pruners.BasePruner:
    import optuna

    if name == "best_gap":
        return _best_gap_pruner_class()(n_startup_trials=n_startup_trials)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name in ("none", None):
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}: use 'best_gap', 'median', 'successive_halving' or 'none'")


_BEST_GAP_PRUNER: Any = None


def _best_gap_pruner_class() -> type:
    """The class is made on first use: optuna is imported only when a search runs."""
    global _BEST_GAP_PRUNER
    if _BEST_GAP_PRUNER is not None:
        return _BEST_GAP_PRUNER
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    class BestGapPruner(optuna.pruners.BasePruner):
        """Prune a trial that cannot plausibly catch up with the best finished trial.

        Every trial reports its running score on the same steps (CV folds in the same order, or boosting stages on
        the same split), so its gap to the best finished trial at step k is a paired comparison, much less noisy
        than a rank among all trials. How far such a gap still moves between step k and the end is measured on the
        finished trials (their gap to the best at k against their gap at the end); a trial is pruned when even
        `z` times that spread would not close its gap. The median pruner, by contrast, lets every trial above the
        median finish, which is most of them once TPE has found the good region.
        """

        def __init__(self, n_startup_trials: int = 5, z: float = 2.0, min_spread: float = 1e-4):
            self.n_startup_trials = n_startup_trials
            self.z = z
            self.min_spread = min_spread

        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            step = trial.last_step
            if step is None:
                return False
            sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
            finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                        if t.intermediate_values]
            if len(finished) < self.n_startup_trials:
                return False
            last = max(max(t.intermediate_values) for t in finished)
            if step >= last:
                return False
            finished = [t for t in finished if last in t.intermediate_values and step in t.intermediate_values]
            if len(finished) < self.n_startup_trials:
                return False
            best = max(finished, key=lambda t: sign * t.intermediate_values[last])
            gap = sign * (trial.intermediate_values[step] - best.intermediate_values[step])
            if gap >= 0:
                return False
            moves = [sign * ((t.intermediate_values[last] - best.intermediate_values[last])
                             - (t.intermediate_values[step] - best.intermediate_values[step]))
                     for t in finished if t.number != best.number]
            spread = max(math.sqrt(sum(m * m for m in moves) / len(moves)), self.min_spread)
            return gap + self.z * spread < 0

    _BEST_GAP_PRUNER = BestGapPruner
    return BestGapPruner


def create_or_load_study(name: str, storage_url: Any = None, direction: str = "maximize",
                         sampler: optuna.samplers.BaseSampler | None = None,
                         pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study or load it when another worker got there first (safe to race)."""
    import optuna

    storage = resolve_storage(storage_url)
    try:
        return optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                   pruner=pruner, load_if_exists=True)
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def enqueue_warm_start(study: optuna.Study, family: ModelFamily, params_list: list[dict[str, Any]]) -> int:
    """Queue known-good configurations (the champion's) first; the same config is never queued twice."""
    allowed = set(family.default_params())
    queued = 0
    for params in params_list:
        clean = {k: v for k, v in params.items() if k in allowed}
        if clean:
            study.enqueue_trial(clean, skip_if_exists=True)
            queued += 1
    return queued


def scorer_for(metric: str, n_classes: int) -> Any:
    from sklearn.metrics import get_scorer

    if metric == "roc_auc" and n_classes > 2:
        metric = "roc_auc_ovr"
    return get_scorer(metric)


# -- MLflow per trial -----------------------------------------------------------------------------------------------
class TrialRunLogger:
    """One MLflow run per trial, nested under `parent_run_id` (tag mlflow.parentRunId), written with the client so
    that it neither needs nor disturbs a fluent active run (threads, several workers)."""

    def __init__(self, parent_run_id: str | None, experiment_name: str | None = None,
                 tracking_uri: str | None = None):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.parent_run_id = parent_run_id
        if parent_run_id:
            self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        else:
            name = experiment_name or "airflow-agentic-hpo"
            found = self.client.get_experiment_by_name(name)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(name)

    def log(self, study_name: str, family: str, trial: optuna.trial.FrozenTrial | Any, state: str,
            record: dict[str, Any]) -> str | None:
        from mlflow.entities import Metric, Param, RunTag

        try:
            tags = {"mlflow.runName": f"{family}-{trial.number}", "agentic.family": family,
                    "agentic.study": study_name, "agentic.trial_number": str(trial.number),
                    "agentic.trial_state": state}
            if self.parent_run_id:
                tags["mlflow.parentRunId"] = self.parent_run_id
            run = self.client.create_run(self.experiment_id, tags=tags)
            now = int(time.time() * 1000)
            metrics = [Metric("fit_seconds", record["fit_seconds"], now, 0),
                       Metric("fit_cpu_seconds", record.get("fit_cpu_seconds", 0.0), now, 0),
                       Metric("duration_seconds", record["duration_seconds"], now, 0)]
            if record.get("score") is not None:
                metrics.append(Metric("score", record["score"], now, 0))
            if record.get("value") is not None:
                metrics.append(Metric("objective", record["value"], now, 0))
            metrics += [Metric("intermediate_score", float(v), now, int(step))
                        for step, v in sorted(record.get("intermediate", {}).items())]
            params = [Param(k, str(v)) for k, v in record["params"].items()]
            self.client.log_batch(run.info.run_id, metrics=metrics, params=params,
                                  tags=[RunTag("agentic.params", json.dumps(record["params"], sort_keys=True))])
            self.client.set_terminated(run.info.run_id, "FAILED" if state == "FAIL" else "FINISHED")
            return run.info.run_id
        except Exception:  # noqa: BLE001 - tracking outages must not fail the search
            log.warning("could not log trial %s of %s to MLflow", trial.number, study_name, exc_info=True)
            return None


# -- the objective --------------------------------------------------------------------------------------------------
def _folds(data: Dataset, n_folds: int, seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    # Same folds for every trial and worker, so intermediate scores are comparable step by step.
    return list(StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed or 0).split(data.X, data.y))


def make_objective(family: ModelFamily, data: Dataset, config: HPOConfig,
                   on_trial_end: Any = None) -> Any:
    """An Optuna objective: score by CV (pruned per fold) or by staged fits on a holdout (pruned per stage)."""
    import optuna

    scorer = scorer_for(config.metric, int(data.y.nunique()))
    use_stages = config.prune_on == "stages" and family.supports_stages
    folds = None if use_stages else _folds(data, config.cv_folds, config.evaluation_seed)

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        params = family.search_space(trial)
        intermediate: dict[int, float] = {}
        fit_seconds = 0.0
        fit_cpu = 0.0
        n_fits = 0
        state, score, value = "FAIL", None, None
        try:
            if use_stages:
                from sklearn.model_selection import train_test_split

                X_tr, X_va, y_tr, y_va = train_test_split(data.X, data.y, test_size=config.validation_fraction,
                                                          stratify=data.y, random_state=config.evaluation_seed)
                tick, cpu_tick = time.perf_counter(), time.process_time()
                for stage, model in family.staged_fit(params, data.schema, X_tr, y_tr, config.n_stages):
                    fit_seconds += time.perf_counter() - tick
                    fit_cpu += time.process_time() - cpu_tick
                    score = float(scorer(model, X_va, y_va))
                    intermediate[stage - 1] = score
                    trial.report(score, stage - 1)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                    tick, cpu_tick = time.perf_counter(), time.process_time()
                n_fits = 1
            else:
                scores = []
                for step, (train_idx, val_idx) in enumerate(folds):
                    tick, cpu_tick = time.perf_counter(), time.process_time()
                    with family.threads():
                        model = family.build(params, data.schema).fit(data.X.iloc[train_idx],
                                                                      data.y.iloc[train_idx])
                    fit_seconds += time.perf_counter() - tick
                    fit_cpu += time.process_time() - cpu_tick
                    n_fits += 1
                    scores.append(float(scorer(model, data.X.iloc[val_idx], data.y.iloc[val_idx])))
                    intermediate[step] = float(np.mean(scores))
                    trial.report(intermediate[step], step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                score = float(np.mean(scores))
            mean_fit = fit_seconds / max(n_fits, 1)
            # CPU rather than wall time: on a shared machine the wall time says more about the neighbours.
            mean_cpu = max(fit_cpu / max(n_fits, 1), 1e-3)
            value = score - config.cost_penalty * mean_fit - config.cost_weight * math.log2(mean_cpu)
            state = "COMPLETE"
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            duration = time.perf_counter() - started
            trial.set_user_attr("fit_seconds", fit_seconds)
            trial.set_user_attr("fit_cpu_seconds", fit_cpu)
            trial.set_user_attr("duration_seconds", duration)
            if score is not None and state == "COMPLETE":
                trial.set_user_attr("score", score)
            if on_trial_end is not None:
                on_trial_end(trial, state, {"params": params, "score": score if state == "COMPLETE" else None,
                                            "value": value, "fit_seconds": fit_seconds,
                                            "fit_cpu_seconds": fit_cpu, "duration_seconds": duration,
                                            "intermediate": intermediate})

    return objective


def _trial_recorder(records: list[TrialRecord], logger: Any, study_name: str, family: str) -> Callable[..., None]:
    """The objective's end-of-trial callback: each trial as a ``TrialRecord`` (and an MLflow run when logging)."""

    def on_trial_end(trial: optuna.Trial, state: str, record: dict[str, Any]) -> None:
        run_id = logger.log(study_name, family, trial, state, record) if logger else None
        records.append(TrialRecord(trial.number, state, record["value"], record["score"], record["fit_seconds"],
                                   record["duration_seconds"], record["params"], run_id,
                                   record.get("fit_cpu_seconds", 0.0)))

    return on_trial_end


def run_trials(study_name: str, storage: Any, family: str | ModelFamily, data: Dataset,
               n_trials: int | None = 20, timeout: float | None = None, *, config: HPOConfig | None = None,
               parent_run_id: str | None = None, experiment_name: str | None = None,
               tracking_uri: str | None = None, log_to_mlflow: bool = True,
               warm_start_params: list[dict[str, Any]] | None = None, max_total_trials: int | None = None,
               worker_id: int = 0, callbacks: list[Any] | None = None) -> HPOResult:
    """Run up to `n_trials` (and/or `timeout` seconds) of `family` on the shared study `study_name`.

    Several processes may call this at once with the same study and storage (journal file or RDB); give each a
    different `worker_id` so their seeded samplers do not propose the same points. `max_total_trials` stops every
    worker once the study holds that many finished trials. `callbacks` go to `study.optimize` (e.g. stop at a
    target score).
    """
    import optuna

    config = config or HPOConfig()
    family_obj = get_family(family, random_state=config.evaluation_seed)
    seed = None if config.seed is None else config.seed + 7919 * worker_id
    study = create_or_load_study(study_name, storage, "maximize",
                                 make_sampler(config.sampler, seed, config.n_startup_trials),
                                 make_pruner(config.pruner, config.n_startup_trials))
    study.set_user_attr("family", family_obj.name)
    if warm_start_params:
        enqueue_warm_start(study, family_obj, warm_start_params)
    elif config.start_from_defaults and worker_id == 0 and not study.get_trials(deepcopy=False):
        # The family's defaults are a sound setting to beat: an early strong trial gives the pruner its yardstick.
        enqueue_warm_start(study, family_obj, [family_obj.default_params()])

    logger = TrialRunLogger(parent_run_id, experiment_name, tracking_uri) if log_to_mlflow else None
    records: list[TrialRecord] = []
    on_trial_end = _trial_recorder(records, logger, study_name, family_obj.name)

    callbacks = list(callbacks or [])
    if max_total_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(
            max_total_trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))
    started = time.perf_counter()
    study.optimize(make_objective(family_obj, data, config, on_trial_end), n_trials=n_trials, timeout=timeout,
                   callbacks=callbacks, catch=(Exception,), gc_after_trial=False)
    return summarise_study(study, family_obj.name, worker_id, time.perf_counter() - started, records, config)


def best_trial(complete: list[Any]) -> Any:
    """The best of finished trials: highest value; on a tie the earliest planned setting (``plan_index``), else the
    lowest trial number, so a planned study names the same best however its trials were numbered."""
    if not complete:
        return None
    return max(complete, key=lambda t: (t.value, -t.user_attrs.get(PLAN_INDEX, t.number)))


# -- planned trials: the same best for 1 or N workers -------------------------------------------------------------
# Why a plan: with TPE every proposal depends on which trials have finished when it is made, and with N workers that
# depends on timing, so two runs of "the same" search evaluate different settings and their bests differ. Here the
# settings are fixed before any trial runs (the family's defaults or the warm start first, then draws of a seeded
# RandomSampler from the family's search space, which ignore scores), each is scored with the same folds and model
# seed, without pruning or timing terms, and the best breaks ties by plan position. The set of (setting, score)
# pairs, and so the best, is then the same for any number of workers in any order: equal by construction.
def plan_trials(family: str | ModelFamily, n_trials: int, seed: int | None = 0, *,
                start_from_defaults: bool = True,
                warm_start_params: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``n_trials`` settings of ``family``'s search space, the same for the same arguments on any machine."""
    import optuna

    family_obj = family if isinstance(family, ModelFamily) else get_family(family)
    allowed = set(family_obj.default_params())
    plan: list[dict[str, Any]] = []
    for params in warm_start_params or ([family_obj.default_params()] if start_from_defaults else []):
        clean = {k: v for k, v in params.items() if k in allowed}
        if clean and clean not in plan:
            plan.append(clean)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))  # in memory, nothing scored
    attempts = 0
    while len(plan) < n_trials and attempts < 20 * n_trials:
        attempts += 1
        trial = draws.ask()
        family_obj.search_space(trial)
        draws.tell(trial, 0.0)
        if trial.params not in plan:  # a small discrete space may repeat itself
            plan.append(dict(trial.params))
    return plan[:n_trials]


def run_planned_trials(study_name: str, storage: Any, family: str | ModelFamily, data: Dataset, n_planned: int, *,
                       worker_id: int = 0, n_workers: int = 1, config: HPOConfig | None = None,
                       parent_run_id: str | None = None, experiment_name: str | None = None,
                       tracking_uri: str | None = None, log_to_mlflow: bool = True,
                       warm_start_params: list[dict[str, Any]] | None = None) -> HPOResult:
    """Worker ``worker_id`` of ``n_workers`` runs its share of a fixed plan of ``n_planned`` settings (plan positions
    ``worker_id, worker_id + n_workers, ...``) on the shared study and returns what it did plus the study's best.

    Every worker derives the same plan from (family, ``n_planned``, ``config.seed``, warm start). A position that the
    study already holds as COMPLETE is skipped, so a retried task never runs a setting twice. The best (see
    :func:`best_trial`) equals a serial run's (``n_workers=1``) with the same arguments."""
    import optuna
    from optuna.trial import TrialState

    config = config or HPOConfig()
    if config.cost_penalty or config.cost_weight:
        raise ValueError("planned trials score by the metric alone: cost_penalty and cost_weight depend on timing, "
                         "so the best would depend on the machine and on the number of workers")
    if config.seed is None:
        raise ValueError("planned trials need a seed: every worker must derive the same plan")
    if not 0 <= worker_id < n_workers:
        raise ValueError(f"worker_id must be in [0, {n_workers}), got {worker_id}")
    family_obj = get_family(family, random_state=config.evaluation_seed)
    plan = plan_trials(family_obj, n_planned, config.seed, start_from_defaults=config.start_from_defaults,
                       warm_start_params=warm_start_params)
    study = create_or_load_study(study_name, storage, "maximize", optuna.samplers.RandomSampler(seed=config.seed),
                                 optuna.pruners.NopPruner())
    study.set_user_attr("family", family_obj.name)
    done = {t.user_attrs.get(PLAN_INDEX) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}

    logger = TrialRunLogger(parent_run_id, experiment_name, tracking_uri) if log_to_mlflow else None
    records: list[TrialRecord] = []
    on_trial_end = _trial_recorder(records, logger, study_name, family_obj.name)

    # No pruning: whether a trial is pruned depends on which others finished first.
    objective = make_objective(family_obj, data, HPOConfig(**{**config.to_dict(), "pruner": "none"}), on_trial_end)
    started = time.perf_counter()
    for index in range(worker_id, len(plan), n_workers):
        if index in done:
            continue
        # Every planned name gets its planned value; a name the plan lacks (a default setting that leaves a
        # parameter out) comes from a sampler seeded by the position, so it is the same in every run too.
        with warnings.catch_warnings():  # PartialFixedSampler is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.sampler = optuna.samplers.PartialFixedSampler(plan[index],
                                                                optuna.samplers.RandomSampler(seed=index))
        trial = study.ask()
        trial.set_user_attr(PLAN_INDEX, index)
        try:
            value = objective(trial)
        except Exception:  # noqa: BLE001 - one failing setting must not lose the others' trials
            log.warning("planned trial %s (%s) of %s failed", index, plan[index], study_name, exc_info=True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        study.tell(trial, value)
    return summarise_study(study, family_obj.name, worker_id, time.perf_counter() - started, records, config)


def summarise_study(study: optuna.Study, family: str, worker_id: int, wall_seconds: float,
                    records: list[TrialRecord], config: HPOConfig) -> HPOResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = best_trial(complete)
    return HPOResult(
        study_name=study.study_name, family=family, worker_id=worker_id,
        best_params=dict(best.params) if best else None,
        best_score=float(best.user_attrs.get("score", best.value)) if best else None,
        best_value=float(best.value) if best else None, best_trial_number=best.number if best else None,
        n_complete=len(complete), n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        n_failed=sum(t.state == TrialState.FAIL for t in trials), wall_seconds=wall_seconds,
        total_fit_seconds=sum(r.fit_seconds for r in records), trials=records, config=config.to_dict(),
    )

