"""Every public optimizer, schedule, clipping rule and loss-scale policy reports an argument
that cannot bind as an ArgumentError naming the owner, the argument, the value and the
closest real parameter names."""

import inspect
import types

import pytest

import jobflow as flow
from jobflow.errors import ArgumentError


def _public(namespace, names=None):
    names = names if names is not None else [n for n in dir(namespace) if not n.startswith("_")]
    for name in names:
        obj = getattr(namespace, name)
        if isinstance(obj, types.ModuleType) or not callable(obj):
            continue
        yield f"{namespace.__name__}.{name}", obj


def _all_public():
    found = dict(_public(flow.optimizer, flow.optimizer.__all__))
    found.update(_public(flow.optimizer.grad_clipping, flow.optimizer.grad_clipping.__all__))
    found.update(_public(flow.optimizer.loss_scale, flow.optimizer.loss_scale.__all__))
    found["flow.optimizer.warmup.linear"] = flow.optimizer.warmup.linear
    found["flow.optimizer.warmup.constant"] = flow.optimizer.warmup.constant
    for ns in (flow.schedule, *(getattr(flow.schedule, m) for m in ("legacy", "oneflow", "pytorch"))):
        found.update(_public(ns))
    for ns in (flow.schedule.mindspore, flow.schedule.transformers):
        found.update(_public(ns, ns.__all__))
    found.pop("jobflow.schedule.as_schedule")  # a converter, not a constructor (checked below)
    return found


PUBLIC = _all_public()


def _takes_any_keyword(obj) -> bool:
    target = obj.__init__ if isinstance(obj, type) else obj
    params = inspect.signature(target).parameters.values()
    return any(p.kind is p.VAR_KEYWORD for p in params)


def test_the_list_covers_every_family():
    assert len(PUBLIC) > 90
    for name in ("Adam", "CosineScheduler", "StepLR", "get_scheduler", "cosine_decay_lr", "by_global_norm"):
        assert any(key.endswith("." + name) for key in PUBLIC), name


@pytest.mark.parametrize("name", sorted(n for n, obj in PUBLIC.items() if not _takes_any_keyword(obj)))
def test_an_unknown_keyword_is_an_argument_error(name):
    with pytest.raises(ArgumentError) as e:
        PUBLIC[name](bogus_argument=123)
    message = str(e.value)
    assert "got an unexpected keyword argument 'bogus_argument' (=123)" in message
    assert "Its arguments are" in message or "It takes no arguments" in message


@pytest.mark.parametrize(
    "make, owner, received, suggestion, listing",
    [
        (
            lambda: flow.optimizer.CosineScheduler(base_lr=0.1, step=100),
            "CosineScheduler()",
            "'step' (=100)",
            "did you mean 'steps'?",
            "Its arguments are base_lr, steps, alpha, warmup",
        ),
        (
            lambda: flow.optimizer.Adam(0.1, beta=0.9),
            "Adam()",
            "'beta' (=0.9)",
            "did you mean 'beta1' or 'beta2'?",
            "Its arguments are lr_scheduler, beta1, beta2, epsilon",
        ),
        (
            lambda: flow.optimizer.SGD(lr=0.1),
            "SGD()",
            "'lr' (=0.1)",
            "did you mean 'lr_scheduler'?",
            "Its arguments are lr_scheduler, ",
        ),
        (
            lambda: flow.optimizer.AdamW(0.1, weight_decy=0.01),
            "AdamW()",
            "'weight_decy' (=0.01)",
            "did you mean 'weight_decay'",
            "weight_decay_excludes",
        ),
        (
            lambda: flow.optimizer.warmup.linear(10, start_multiplyer=0.5),
            "warmup.linear()",
            "'start_multiplyer' (=0.5)",
            "did you mean 'start_multiplier'?",
            "Its arguments are steps, start_multiplier",
        ),
        (
            lambda: flow.schedule.StepLR(0.1, step=3),
            "StepLR()",
            "'step' (=3)",
            "did you mean 'step_size'?",
            "step_size",
        ),
        (
            lambda: flow.optimizer.grad_clipping.by_global_norm(clipnorm=1.0),
            "by_global_norm()",
            "'clipnorm' (=1.0)",
            "did you mean 'clip_norm'?",
            "Its arguments are clip_norm",
        ),
        (
            lambda: flow.schedule.mindspore.cosine_decay_lr(0.0, 0.1, 10, 2, decay_epochs=1),
            "cosine_decay_lr()",
            "'decay_epochs' (=1)",
            "did you mean 'decay_epoch'?",
            "Its arguments are min_lr, max_lr, total_step, step_per_epoch, decay_epoch",
        ),
    ],
)
def test_a_typo_names_the_value_and_the_closest_names(make, owner, received, suggestion, listing):
    with pytest.raises(ArgumentError) as e:
        make()
    message = str(e.value)
    assert message.startswith(owner + " got an unexpected keyword argument " + received), message
    assert suggestion in message and listing in message


def test_a_subclass_is_named_as_called():
    # ExponentialDecayLR inherits its __init__ from a private base: the message names the class called.
    with pytest.raises(
        ArgumentError, match=r"^ExponentialDecayLR\(\) got an unexpected keyword argument 'decay_step'"
    ):
        flow.schedule.mindspore.ExponentialDecayLR(0.1, 0.9, decay_step=3)


def test_missing_and_surplus_positionals_echo_the_call():
    with pytest.raises(ArgumentError) as e:
        flow.optimizer.CosineScheduler(0.1)
    assert str(e.value) == (
        "CosineScheduler() missing a required argument: 'steps'; got CosineScheduler(0.1). "
        "Its arguments are base_lr, steps, alpha, warmup"
    )
    with pytest.raises(
        ArgumentError, match=r"too many positional arguments; got CosineScheduler\(0.1, 10, 0.0, None, 5\)"
    ):
        flow.optimizer.CosineScheduler(0.1, 10, 0.0, None, 5)


def test_errors_raised_inside_a_constructor_pass_through_unchanged():
    # A TypeError from the constructor's own checks is not a binding problem.
    with pytest.raises(TypeError, match=r"warmup\) must be flow.optimizer.warmup.linear"):
        flow.optimizer.CosineScheduler(0.1, 10, warmup=3)
    with pytest.raises(ArgumentError, match=r"steps"):
        flow.optimizer.CosineScheduler(0.1, steps=0)


def test_a_correct_call_still_builds_the_object():
    sched = flow.optimizer.CosineScheduler(base_lr=0.1, steps=10)
    assert sched.values(2)[0] == pytest.approx(0.1)
    opt = flow.optimizer.Adam(sched, beta1=0.8)
    assert opt.beta1 == 0.8 and type(opt).__init__.__name__ == "__init__"
