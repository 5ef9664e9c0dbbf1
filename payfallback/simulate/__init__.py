"""The outage simulator behind ``payfallback simulate``.

It replays a small shop's traffic against fake providers on a simulated clock, so a
weekend runs in seconds, and serves the same customers three ways: with no fallback,
with hand-written retries and fallback, and with payfallback. See ``docs/simulator.md``.
::

    from payfallback.simulate import load_scenario, simulate

    report = simulate(load_scenario("kakao-fire-2022"), seed=1)
    print(report.strategies["payfallback"].approval_vs_baseline)
"""

from payfallback.simulate._engine import (
    BaselineReport,
    BreakerTrip,
    SimulationReport,
    StrategyReport,
    Timeline,
    simulate,
)
from payfallback.simulate._plot import PlotUnavailable, plot_report, require_matplotlib
from payfallback.simulate._scenario import (
    Scenario,
    ScenarioError,
    Traffic,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from payfallback.simulate._strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "BaselineReport",
    "BreakerTrip",
    "PlotUnavailable",
    "Scenario",
    "ScenarioError",
    "SimulationReport",
    "StrategyReport",
    "Timeline",
    "Traffic",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
    "plot_report",
    "require_matplotlib",
    "simulate",
]
