"""The weights-manager role: turns a rollout into a runnable candidate network.

Contract (checked by the suite in ``testing/weights_manager.py``):

* built as ``cls(options, space=..., seed=...)`` (plus ``dataset`` where it matters);
* :meth:`assemble_candidate` returns a ``torch.nn.Module`` computing the rollout's
  architecture: for an input of the space's shape it returns logits of
  ``num_classes`` columns;
* the same rollout assembled twice computes the same function (weights are either
  freshly seeded from (seed, architecture) or shared), and assembling does not draw
  from torch's global random stream;
* shared-weight managers expose ``module`` (the supernet whose parameters an
  evaluator trains; a candidate's parameters are among them) and round-trip their
  weights through :meth:`state_dict`; where they offer ``export_subnet(arch)``, the
  exported network computes what the candidate computes;
* ``supernet_for`` names registered spaces; :meth:`Component.example` gives a small
  space this manager serves.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

from hwnas.search.component import Component
from hwnas.search.rollout import Rollout


class WeightsManager(Component):
    """Fills a rollout with weights: a runnable candidate network."""

    #: Search spaces (registry names) for which this manager is the default supernet,
    #: e.g. when ``hwnas train --from-supernet`` meets a config without the section.
    supernet_for: tuple[str, ...] = ()

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        """Whether this manager can fill architectures of spaces of class ``space_cls``
        (default: any space, as a plain manager builds any network). The one
        compatibility rule: the search asks it when it builds the manager
        (:meth:`check_space`), ``gen-config`` when it writes a config."""
        return True

    @classmethod
    def check_space(cls, space_cls: type, where: str = "weights_manager.type") -> None:
        """A one-line ConfigError naming ``where`` unless :meth:`serves` accepts the space,
        listing the spaces it does serve."""
        if cls.serves(space_cls):
            return
        from hwnas import registry
        from hwnas.errors import ConfigError

        served = [e.name for e in registry.list("search_space") if cls.serves(e.obj)]
        name = getattr(space_cls, "registry_name", space_cls.__name__)
        others = [e.name for e in registry.list("weights_manager") if name in getattr(e.obj, "supernet_for", ())]
        raise ConfigError(f"{where}: {cls.registry_name} serves the search space(s) {', '.join(served) or 'none'}, "
                          f"got {name!r}" + (f" (its supernet: {', '.join(others)})" if others else ""))

    @abstractmethod
    def assemble_candidate(self, rollout: Rollout) -> Any:
        """The candidate network of ``rollout.arch``."""
