"""Bad optimizer arguments raise at construction, naming the argument and echoing the value."""

import re

import pytest

import jobflow as flow

O = flow.optimizer

BAD = [
    (lambda: O.SGD(0.1, momentum=1.0), ValueError, r"SGD\(momentum\) must be >= 0 and < 1; got momentum=1.0"),
    (lambda: O.SGD(0.1, momentum=0.0, nesterov=True), ValueError, r"SGD\(nesterov=True\) needs momentum > 0"),
    (
        lambda: O.SGDW(0.1, nesterov="yes"),
        TypeError,
        r"SGDW\(nesterov\) must be True or False; got nesterov='yes'",
    ),
    (lambda: O.Momentum(0.1, -0.5), ValueError, r"Momentum\(momentum\) must be >= 0; got"),
    (lambda: O.Adam(None), TypeError, r"Adam\(lr_scheduler\) is required"),
    (lambda: O.Adam(0.1, beta1=1.0), ValueError, r"Adam\(beta1\) must be >= 0 and < 1; got beta1=1.0"),
    (lambda: O.AdamW(0.1, epsilon=-1e-8), ValueError, r"AdamW\(epsilon\) must be >= 0; got"),
    (
        lambda: O.pytorch.AdamW(0.1, do_bias_correction="yes"),
        TypeError,
        r"AdamW\(do_bias_correction\) must be True or False; got do_bias_correction='yes'",
    ),
    (
        lambda: O.LazyAdam(0.1, beta2=float("nan")),
        ValueError,
        r"LazyAdam\(beta2\) must be a finite number; got beta2=nan",
    ),
    (lambda: O.LARS(0.1, lars_coefficient=0.0), ValueError, r"LARS\(lars_coefficient\) must be > 0; got"),
    (
        lambda: O.LAMB(0.1, trust_ratio="paper"),
        ValueError,
        r"LAMB\(trust_ratio\) must be one of \['oneflow', 'optax', 'mindspore'\]; got 'paper'",
    ),
    (lambda: O.RMSProp(0.1, decay_rate=1.5), ValueError, r"RMSProp\(decay_rate\) must be >= 0 and < 1; got"),
    (lambda: O.RMSProp(0.1, centered=1), TypeError, r"RMSProp\(centered\) must be True or False"),
    (lambda: O.Adagrad(0.1, lr_decay=-1), ValueError, r"Adagrad\(lr_decay\) must be >= 0; got"),
    (lambda: O.ProximalAdagrad(0.1, accum=0.0), ValueError, r"ProximalAdagrad\(accum\) must be > 0; got"),
    (lambda: O.Ftrl(0.1, lr_power=0.5), ValueError, r"Ftrl\(lr_power\) must be <= 0; got lr_power=0.5"),
    (lambda: O.Adafactor(0.1), ValueError, r"an external lr_scheduler needs relative_step=False"),
    (
        lambda: O.Adafactor(relative_step=False),
        ValueError,
        r"Adafactor\(relative_step=False\) needs an lr_scheduler",
    ),
    (
        lambda: O.Adafactor(0.1, relative_step=False, warmup_init=True),
        ValueError,
        r"Adafactor\(warmup_init=True\) needs relative_step=True",
    ),
    (
        lambda: O.Adafactor(eps=1e-3),
        ValueError,
        r"Adafactor\(eps\) must be a pair \(eps1, eps2\); got eps=0.001",
    ),
    (
        lambda: O.Adam(0.1, variables="(dense"),
        ValueError,
        r"Adam\(variables\): variables='\(dense' is not a valid regex",
    ),
    (
        lambda: O.Adam(0.1, variables=3),
        TypeError,
        r"Adam\(variables\): variables must be None, a list of variable names",
    ),
    (lambda: O.SGD(0.1, grad_clipping=1.0), TypeError, r"grad_clipping must be"),
]


IDS = [f"{i}-{re.match(r'[A-Za-z]+', m).group()}" for i, (_, _, m) in enumerate(BAD)]


@pytest.mark.parametrize("make, error, message", BAD, ids=IDS)
def test_bad_arguments_raise_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()
