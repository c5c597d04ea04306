"""Imitation learning: experts, behaviour cloning, DAgger and noise-injected demonstrations.

- `experts`: any `obs -> action` callable as an expert, checked at every label; built in:
  LQR and MPC (`bellmax.control`), a trained policy, tic-tac-toe's perfect player, a person
  at the terminal (`human`), `module:function`.
- `dataset`: labelled observations saved as `.npz` (no pickle), atomically.
- `bc`: behaviour cloning of a flax MLP; the policy file `bellmax.load_policy` reads.
- `games`: tic-tac-toe against a random opponent, and the exhaustive "never loses" check.
- `human`: a person at the terminal as the expert (scriptable streams; labels saved as given).
- `nominal`: the cart-pole's energy swing-up; a controller's rollout as MPC's first guess.
- `loop`: `imitate(env_id, expert, ImitationConfig(algorithm="bc"|"dagger"|"dart", ...))`,
  with the three-cameras perturbed copies as an option of any of them.
"""

from bellmax.imitation import bc, dataset, experts, games, human, loop, nominal
from bellmax.imitation.bc import *  # noqa: F403
from bellmax.imitation.dataset import *  # noqa: F403
from bellmax.imitation.experts import *  # noqa: F403
from bellmax.imitation.games import *  # noqa: F403
from bellmax.imitation.human import *  # noqa: F403
from bellmax.imitation.loop import *  # noqa: F403
from bellmax.imitation.nominal import *  # noqa: F403

__all__ = []
__all__ += bc.__all__
__all__ += dataset.__all__
__all__ += experts.__all__
__all__ += games.__all__
__all__ += human.__all__
__all__ += loop.__all__
__all__ += nominal.__all__

# Submodules load on first use as attributes too (`bellmax.imitation.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
