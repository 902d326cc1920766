"""scikit-learn knobs: the arguments of common estimators, written or left at their default.

An argument written as a literal is replaced in place; one left out is inserted as a
keyword (`RandomForestClassifier()` -> `RandomForestClassifier(max_depth=8)`), its default
being scikit-learn's. A call with positional arguments beyond the estimator's documented
first one, or with **kwargs, is left alone: its mapping cannot be read safely.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from tweakops.analysis.code_units import CodeUnit
from tweakops.knobs import _rules as rules
from tweakops.knobs._keras import Found
from tweakops.knobs._model import Knob
from tweakops.knobs._source import FileCode, argument, call_name, insertion, literal, span

Params = dict[str, tuple[Any, rules.Rule]]
_FOREST: Params = {
    "n_estimators": (100, rules.trees),
    "max_depth": (None, rules.depth),
    "min_samples_leaf": (1, rules.leaf),
}
_BOOSTING: Params = {
    "n_estimators": (100, rules.trees),
    "learning_rate": (0.1, rules.learning_rate),
    "max_depth": (3, rules.depth),
    "subsample": (1.0, rules.fraction),
}
_HIST: Params = {
    "learning_rate": (0.1, rules.learning_rate),
    "max_iter": (100, rules.trees),
    "max_leaf_nodes": (31, rules.sizes),
    "l2_regularization": (0.0, rules.penalty),
}
_SVM: Params = {
    "C": (1.0, rules.penalty),
    "kernel": ("rbf", rules.choices("linear", "poly")),
    "gamma": ("scale", rules.choices("auto")),
}
_KNN: Params = {
    "n_neighbors": (5, rules.neighbors),
    "weights": ("uniform", rules.choices("distance")),
    "p": (2, rules.choices(1)),
}
_TREE: Params = {"max_depth": (None, rules.depth), "min_samples_leaf": (1, rules.leaf)}
_ALPHA: Params = {"alpha": (1.0, rules.penalty)}
_MLP: Params = {
    "alpha": (0.0001, rules.penalty),
    "learning_rate_init": (0.001, rules.learning_rate),
}

# estimator -> (knob name prefix, the argument it takes by position, its tunable arguments)
ESTIMATORS: dict[str, tuple[str, str | None, Params]] = {
    "RandomForestClassifier": (
        "random_forest",
        "n_estimators",
        {**_FOREST, "max_features": ("sqrt", rules.choices("log2", None))},
    ),
    "RandomForestRegressor": (
        "random_forest",
        "n_estimators",
        {**_FOREST, "max_features": (1.0, rules.choices("sqrt", "log2"))},
    ),
    "ExtraTreesClassifier": ("extra_trees", "n_estimators", _FOREST),
    "ExtraTreesRegressor": ("extra_trees", "n_estimators", _FOREST),
    "GradientBoostingClassifier": ("gradient_boosting", None, _BOOSTING),
    "GradientBoostingRegressor": ("gradient_boosting", None, _BOOSTING),
    "HistGradientBoostingClassifier": ("hist_gradient_boosting", None, _HIST),
    "HistGradientBoostingRegressor": ("hist_gradient_boosting", None, _HIST),
    "AdaBoostClassifier": (
        "ada_boost",
        None,
        {"n_estimators": (50, rules.trees), "learning_rate": (1.0, rules.learning_rate)},
    ),
    "SVC": ("svc", None, _SVM),
    "SVR": ("svr", None, _SVM),
    "LinearSVC": ("linear_svc", None, {"C": (1.0, rules.penalty)}),
    "KNeighborsClassifier": ("knn", "n_neighbors", _KNN),
    "KNeighborsRegressor": ("knn", "n_neighbors", _KNN),
    "LogisticRegression": (
        "logistic_regression",
        None,
        {"C": (1.0, rules.penalty), "max_iter": (100, rules.iterations)},
    ),
    "Ridge": ("ridge", "alpha", _ALPHA),
    "RidgeClassifier": ("ridge", "alpha", _ALPHA),
    "Lasso": ("lasso", "alpha", _ALPHA),
    "ElasticNet": ("elastic_net", "alpha", {**_ALPHA, "l1_ratio": (0.5, rules.fraction)}),
    "SGDClassifier": ("sgd", None, {"alpha": (0.0001, rules.penalty)}),
    "SGDRegressor": ("sgd", None, {"alpha": (0.0001, rules.penalty)}),
    "DecisionTreeClassifier": (
        "decision_tree",
        None,
        {**_TREE, "criterion": ("gini", rules.choices("entropy"))},
    ),
    "DecisionTreeRegressor": ("decision_tree", None, _TREE),
    "MLPClassifier": ("mlp", None, _MLP),
    "MLPRegressor": ("mlp", None, _MLP),
}


def sklearn_knobs(code: FileCode) -> Iterator[Found]:
    """The estimator knobs of one file, in source order, with their base names."""
    if "sklearn" not in code.imports:
        return
    for unit, call in code.calls():
        estimator = call_name(call.func)
        if estimator in ESTIMATORS and _readable(call, ESTIMATORS[estimator][1]):
            yield from _estimator(code, unit, call, estimator)


def _readable(call: ast.Call, first: str | None) -> bool:
    """No **kwargs, no *args, and at most the one documented positional argument."""
    if any(k.arg is None for k in call.keywords) or any(
        isinstance(a, ast.Starred) for a in call.args
    ):
        return False
    return not call.args or (first is not None and len(call.args) == 1)


def _estimator(code: FileCode, unit: CodeUnit, call: ast.Call, estimator: str) -> Iterator[Found]:
    prefix, first, params = ESTIMATORS[estimator]
    for arg_name, (library_default, rule) in params.items():
        base = f"{prefix}_{arg_name}"
        what = f"{estimator} {arg_name}"
        node = argument(call, arg_name, 0 if arg_name == first else None)
        if node is None:
            ranged = rule(base, library_default)
            if ranged is not None:
                site = insertion(unit, call, arg_name)
                yield base, Knob(base, what, library_default, ranged[0], ranged[1], site)
            continue
        where, value = code.resolve(unit, node)
        ok, default = literal(value)
        ranged = rule(base, default) if ok else None
        if ranged is not None:
            yield base, Knob(base, what, default, ranged[0], ranged[1], span(where, value))
