"""Keras knobs: fit(epochs=, batch_size=), compile's optimizer and learning rate, layer sizes.

The output layer is left alone: a Dense with a softmax or sigmoid activation, and the last
Dense of a file, set the model's output shape, not its capacity.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from tweakops.analysis.code_units import CodeUnit
from tweakops.knobs import _rules as rules
from tweakops.knobs._model import OPTIMIZER_KNOB, Knob, Site
from tweakops.knobs._source import FileCode, argument, call_name, literal, span

KERAS_MODULES = frozenset({"keras", "tensorflow", "tf_keras"})
_CONV = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
# layer -> (argument, position, rule, knob suffix)
LAYERS: dict[str, tuple[tuple[str, int, rules.Rule, str], ...]] = {
    "Dense": (("units", 0, rules.sizes, "units"),),
    **{
        name: (
            ("filters", 0, rules.sizes, "filters"),
            ("kernel_size", 1, rules.kernel, "kernel_size"),
        )
        for name in _CONV
    },
    **{name: (("units", 0, rules.sizes, "units"),) for name in ("LSTM", "GRU", "SimpleRNN")},
    **{
        name: (("rate", 0, rules.rate, "rate"),)
        for name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D")
    },
}
OPTIMIZER_CLASSES = frozenset(
    {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion"}
)
_OUTPUT_ACTIVATIONS = frozenset({"softmax", "sigmoid"})
Found = tuple[str, Knob]  # (base name, knob)


def keras_knobs(code: FileCode) -> Iterator[Found]:
    """The Keras knobs of one file, in source order, with their base names."""
    if not code.imports & KERAS_MODULES:
        return
    calls = list(code.calls())
    dense = [call for _, call in calls if call_name(call.func) == "Dense"]
    output = dense[-1] if dense else None
    for unit, call in calls:
        name = call_name(call.func)
        if name in LAYERS and not (name == "Dense" and _is_output(call, output)):
            yield from _layer(code, unit, call, name)
        elif name == "fit" and isinstance(call.func, ast.Attribute):
            yield from _fit(code, unit, call)
        elif name == "compile" and isinstance(call.func, ast.Attribute):
            yield from _compile(code, unit, call)


def _layer(code: FileCode, unit: CodeUnit, call: ast.Call, layer: str) -> Iterator[Found]:
    for arg_name, position, rule, suffix in LAYERS[layer]:
        node = argument(call, arg_name, position)
        if node is None:
            continue
        where, value = code.resolve(unit, node)
        form, default = _written(value, pair=arg_name == "kernel_size")
        what = f"{layer} {arg_name}"
        found = _knob(f"{layer.lower()}_{suffix}", what, default, rule, where, value)
        if form is not None and found is not None:
            base, knob = found
            yield base, replace(knob, site=replace(knob.site, form=form))


def _fit(code: FileCode, unit: CodeUnit, call: ast.Call) -> Iterator[Found]:
    for arg_name, rule in (("epochs", rules.epochs), ("batch_size", rules.batch)):
        node = argument(call, arg_name, None)
        if node is not None:
            where, value = code.resolve(unit, node)
            ok, default = literal(value)
            what = f"fit {arg_name}"
            found = _knob(arg_name, what, default, rule, where, value) if ok else None
            if found is not None:
                yield found


def _compile(code: FileCode, unit: CodeUnit, call: ast.Call) -> Iterator[Found]:
    node = argument(call, "optimizer", 0)
    if node is None:
        return
    where, value = code.resolve(unit, node)
    ok, name = literal(value)
    if ok and isinstance(name, str):
        site = span(where, value, "optimizer")
        choice = _knob("optimizer", OPTIMIZER_KNOB, name, rules.optimizer, where, value)
        lr = rules.default_learning_rate(name)
        rate = _knob(
            "learning_rate", f"{name} learning rate", lr, rules.learning_rate, where, value
        )
        for found in (choice, rate):
            if found is not None:
                yield found[0], replace(found[1], site=site)
    elif isinstance(value, ast.Call) and call_name(value.func) in OPTIMIZER_CLASSES:
        rate_node = argument(value, "learning_rate", 0) or argument(value, "lr", None)
        if rate_node is not None:
            where, rate_value = code.resolve(where, rate_node)
            ok, default = literal(rate_value)
            what = f"{call_name(value.func)} learning rate"
            found = _knob("learning_rate", what, default, rules.learning_rate, where, rate_value)
            if ok and found is not None:
                yield found


def _knob(
    base: str,
    what: str,
    default: Any,
    rule: Callable[[str, Any], tuple[Any, str] | None],
    unit: CodeUnit,
    node: ast.expr,
) -> Found | None:
    ranged = rule(base, default)
    if ranged is None:
        return None
    spec, text = ranged
    site: Site = span(unit, node)
    return base, Knob(base, what, default, spec, text, site)


def _written(node: ast.expr, pair: bool) -> tuple[str | None, Any]:
    """(form, value) of a literal, or of a kernel size written as (k, k); (None, None) else."""
    if pair and isinstance(node, ast.Tuple) and node.elts:
        values = [literal(e) for e in node.elts]
        numbers = {v for ok, v in values if ok and isinstance(v, int) and not isinstance(v, bool)}
        if len(numbers) == 1 and all(ok for ok, _ in values):
            return "pair", numbers.pop()
        return None, None
    ok, value = literal(node)
    return ("value", value) if ok else (None, None)


def _is_output(call: ast.Call, last_dense: ast.Call | None) -> bool:
    activation = argument(call, "activation", 1)
    named = isinstance(activation, ast.Constant) and activation.value in _OUTPUT_ACTIVATIONS
    return named or call is last_dense
