"""`MetaBraider`: looks at a task and the model pool and decides how to braid.

Tokens: one task token (task features + family one-hot, plus a learned family embedding) and one
token per pool member (its profile features, plus a learned member embedding). A small transformer
encoder mixes them; heads read the result:

- models: a categorical over members picks the lead model (the one a task is routed to), then a
  Bernoulli per other member decides whether it joins the lead (its joining bias starts low, so
  the braider starts near one model per prompt and braids in others where that pays). A lead's
  logit is its member token's score plus a score the task token gives each member directly (a
  classifier over members, linear in the family features): through attention alone the family
  reached the member scores too weakly, and the head sent every family to one member. A lead's
  logit also holds a learned multiple of the member's measured skill on the task's family (from
  its profile; the multiple starts at `skill_prior`): a prior for routing, which REINFORCE
  confirms or overrides, so a few lucky 0/1 answers early on do not fix a weak lead. A member's
  joining logit sees the lead: its own score plus a pair score of its token against the lead's
  (whether model j helps depends on which model leads, e.g. a fusion that helps one specialist
  hurts another). A joining logit also holds a learned multiple (starting at `join_prior`) of
  the profiles' evidence that the member helps this lead: for a member whose domain is the
  task's family, 1 - |its measured skill on the family - the lead's|, else 0. A family's own
  members (e.g. its specialists made with different seeds) are the joins that can pay, and among
  ten other members REINFORCE alone rarely tries them before it learns that joining costs (off
  by default: on the seed-pair pool the joins it finds were measured not to pay). With
  `join_by_task`, the task token also gives each member a joining score directly;
- layers: a Bernoulli per fusion layer (task token);
- strategy, temperature, top_k: categoricals (task token);
- value: the learned REINFORCE baseline (task token).

A head's log-probability enters the policy gradient only when its decision changes what runs
(`relevance`), so each head learns from the episodes where it mattered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evolora.braid.config import BraiderConfig
from evolora.braid.features import MODEL_FEATURES, TASK_FEATURES, BraidInputs
from evolora.braid.fusion import STRATEGIES, strategy_names
from evolora.braid.plan import Plan
from evolora.errors import EvoloraError
from evolora.telemetry.atomic import atomic_write_text

HEADS = ("models", "layers", "strategy", "temperature", "top_k")
SKILL = MODEL_FEATURES.index("skill_on_family")
DOMAIN = MODEL_FEATURES.index("domain_match")
JOIN_BIAS = -2.0  # sigmoid(-2) = 0.12: a member starts rarely joining the lead
BRAIDER_FILE = "braider.safetensors"
BRAIDER_JSON = "braider.json"


@dataclass
class Decision:
    """Sampled (or greedy) decisions for a batch, with log-probs and entropies per head (B,)."""

    models: torch.Tensor  # (B, M) bool: the lead and the members that join it
    layers: torch.Tensor  # (B, L) bool
    strategy: torch.Tensor  # (B,) long
    temperature: torch.Tensor  # (B,) long index into config.temperatures
    top_k: torch.Tensor  # (B,) long index into config.top_ks
    logp: dict[str, torch.Tensor]
    entropy: dict[str, torch.Tensor]
    value: torch.Tensor  # (B,)
    lead: torch.Tensor  # (B,) long: the lead model


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row drawn from `probs` (B, K) with `generator`."""
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    return (probs.cumsum(-1) < u).sum(-1).clamp(max=probs.shape[-1] - 1)


def join_evidence(models: torch.Tensor) -> torch.Tensor:
    """(B, lead, member) evidence from the profiles (`models` (B, M, F)) that a member helps a
    lead: 1 - |member's skill on the task's family - lead's| where the member's domain is the
    family, else 0."""
    skill, own = models[..., SKILL], models[..., DOMAIN]
    return own[:, None, :] * (1 - (skill[:, :, None] - skill[:, None, :]).abs())


class MetaBraider(nn.Module):
    """The decision network over a pool of `members` models with `layers` shared layers."""

    def __init__(self, members: list[str], layers: int, config: BraiderConfig,
                 families: list[str] | None = None) -> None:
        super().__init__()
        self.members, self.n_layers, self.config = list(members), layers, config
        self.families: list[str] = []
        self.frozen: set[str] = set()  # heads that draw uniformly at random (ablations)
        for family in families or []:
            self.family_slot(family)
        w = config.width
        self.task_in = nn.Linear(len(TASK_FEATURES) + config.max_families, w)
        self.family_embedding = nn.Embedding(config.max_families, w)
        self.model_in = nn.Linear(len(MODEL_FEATURES), w)
        self.member_embedding = nn.Embedding(len(members), w)
        layer = nn.TransformerEncoderLayer(w, config.heads, 2 * w, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.model_head = nn.Linear(w, 1)  # lead model, a logit per member token
        self.skill_scale = nn.Parameter(torch.tensor(float(config.skill_prior)))
        # Lead model, a logit per member from the task; no bias, so what one family teaches it
        # moves no other family's lead.
        self.route_head = nn.Linear(w, len(members), bias=False)
        nn.init.zeros_(self.route_head.weight)
        self.join_head = nn.Linear(w, 1)  # another member joins the lead
        nn.init.constant_(self.join_head.bias, JOIN_BIAS)
        self.join_scale = nn.Parameter(torch.tensor(float(config.join_prior)))
        # A joining score per member from the task (as route_head for the lead), so a join can
        # pay on one family and not on another.
        self.join_route = None
        if config.join_by_task:
            self.join_route = nn.Linear(w, len(members), bias=False)
            nn.init.zeros_(self.join_route.weight)
        self.layer_head = nn.Linear(w, layers)
        self.strategy_head = nn.Linear(w, len(strategy_names()))
        self.temperature_head = nn.Linear(w, len(config.temperatures))
        self.top_k_head = nn.Linear(w, len(config.top_ks))
        self.value_head = nn.Linear(w, 1)
        self.join_pair = nn.Linear(w, w, bias=False)  # lead token -> query over member tokens
        nn.init.zeros_(self.join_pair.weight)

    def family_slot(self, family: str) -> int:
        """The embedding slot of `family`, assigning the next free one to a new family."""
        if family not in self.families:
            if len(self.families) >= self.config.max_families:
                raise EvoloraError(
                    f"The braider knows {len(self.families)} families, its max_families; raise "
                    f"braider.max_families to add {family!r}."
                )
            self.families.append(family)
        return self.families.index(family)

    def slots(self) -> dict[str, int]:
        """{family: slot} of every family seen so far."""
        return {f: i for i, f in enumerate(self.families)}

    # ---- the network ------------------------------------------------------------------------
    def logits(self, inputs: BraidInputs) -> dict[str, torch.Tensor]:
        """Every head's logits and the value for a batch of inputs."""
        known = (inputs.family >= 0).float()[:, None]  # family -1: hidden (explanations)
        slot = inputs.family.clamp(min=0)
        onehot = nn.functional.one_hot(slot, self.config.max_families).float() * known
        task = self.task_in(torch.cat([inputs.task, onehot], -1))
        task = task + self.family_embedding(slot) * known
        ids = torch.arange(len(self.members), device=inputs.models.device)
        models = self.model_in(inputs.models) + self.member_embedding(ids)
        tokens = self.encoder(torch.cat([task[:, None], models], dim=1))  # (B, 1 + M, w)
        head, members = tokens[:, 0], tokens[:, 1:]
        pair = self.join_pair(members) @ members.transpose(1, 2) / members.shape[-1] ** 0.5
        join = (self.join_head(members).squeeze(-1)[:, None, :] + pair
                + self.join_scale * join_evidence(inputs.models))
        if self.join_route is not None:
            join = join + self.join_route(task)[:, None, :]
        out = {
            "models": (self.model_head(members).squeeze(-1) + self.route_head(task)
                       + self.skill_scale * inputs.models[..., SKILL]),
            # (B, lead, member): the joining logit of each member under each lead
            "join": join,
            "layers": self.layer_head(head),
            "strategy": self.strategy_head(head),
            "temperature": self.temperature_head(head),
            "top_k": self.top_k_head(head),
            "value": self.value_head(head).squeeze(-1),
        }
        for name in self.frozen:
            out[name] = torch.zeros_like(out[name])  # uniform, and no gradient reaches the head
            if name == "models":
                out["join"] = torch.zeros_like(out["join"])
        return out

    def decide(self, inputs: BraidInputs, greedy: bool = False,
               generator: torch.Generator | None = None,
               forced: Decision | None = None, explore: torch.Tensor | None = None) -> Decision:
        """Sample a decision per row (argmax when `greedy`), or score the `forced` one.

        `explore` (B, M), rows summing to at most 1, is probability mass over members mixed into
        the sampled lead's distribution (the rest follows the policy); the decision's log-prob
        is then that of the mixture, the distribution it was drawn from."""
        out = self.logits(inputs)
        picks, logp, entropy = {}, {}, {}
        lead_dist = torch.distributions.Categorical(logits=out["models"])
        drawn = lead_dist
        if explore is not None and not greedy and forced is None:
            mixture = (1 - explore.sum(-1, keepdim=True)) * lead_dist.probs + explore
            drawn = torch.distributions.Categorical(probs=mixture)
        lead = self._lead(out["models"] if drawn is lead_dist else drawn.logits, greedy,
                          generator, forced)
        join = out["join"][torch.arange(lead.shape[0], device=lead.device), lead]
        picks["models"], join_logp, join_entropy = self._team(join, lead, greedy, generator,
                                                              forced)
        logp["models"] = drawn.log_prob(lead) + join_logp
        entropy["models"] = lead_dist.entropy() + join_entropy
        entropy["lead"] = lead_dist.entropy()
        probs = torch.sigmoid(out["layers"])
        if forced is not None:
            pick = forced.layers
        elif greedy:
            pick = probs > 0.5
        else:
            pick = torch.rand(probs.shape, generator=generator, device=probs.device) < probs
        dist = torch.distributions.Bernoulli(logits=out["layers"])
        picks["layers"] = pick
        logp["layers"] = dist.log_prob(pick.float()).sum(-1)
        entropy["layers"] = dist.entropy().sum(-1)
        for name in ("strategy", "temperature", "top_k"):
            dist = torch.distributions.Categorical(logits=out[name])
            if forced is not None:
                pick = getattr(forced, name)
            elif greedy:
                pick = out[name].argmax(-1)
            else:
                pick = _draw(dist.probs, generator)
            picks[name] = pick
            logp[name] = dist.log_prob(pick)
            entropy[name] = dist.entropy()
        return Decision(**picks, logp=logp, entropy=entropy, value=out["value"], lead=lead)

    @staticmethod
    def _lead(logits, greedy, generator, forced) -> torch.Tensor:
        """The lead model per row: forced, argmax when greedy, else drawn."""
        if forced is not None:
            return forced.lead
        return logits.argmax(-1) if greedy else _draw(torch.softmax(logits, -1), generator)

    @staticmethod
    def _team(join_logits, lead, greedy, generator, forced):
        """(models (B, M) bool, log-prob, entropy) of the members joining each row's lead."""
        is_lead = nn.functional.one_hot(lead, join_logits.shape[-1]).bool()
        probs = torch.sigmoid(join_logits)
        if forced is not None:
            joins = forced.models & ~is_lead
        elif greedy:
            joins = probs > 0.5
        else:
            joins = torch.rand(probs.shape, generator=generator, device=probs.device) < probs
        joins = joins & ~is_lead
        dist = torch.distributions.Bernoulli(logits=join_logits)
        others = (~is_lead).float()
        logp = (dist.log_prob(joins.float()) * others).sum(-1)
        return joins | is_lead, logp, (dist.entropy() * others).sum(-1)

    def relevance(self, decision: Decision) -> dict[str, torch.Tensor]:
        """Per head (B,) float: 1 where that head's choice changed what ran, else 0."""
        multi = decision.models.sum(-1) > 1
        hidden = decision.strategy < len(STRATEGIES)
        router = decision.strategy == strategy_names().index("router")
        return {"models": torch.ones_like(multi, dtype=torch.float32),
                "strategy": multi.float(), "layers": (multi & hidden).float(),
                "temperature": (multi & hidden).float(), "top_k": (multi & router).float()}

    def plan(self, decision: Decision) -> Plan:
        """The braid plan a decision asks for."""
        device = decision.models.device
        temps = torch.tensor(self.config.temperatures, device=device)
        ks = torch.tensor(self.config.top_ks, device=device)
        return Plan(decision.models, decision.layers, decision.strategy,
                    temps[decision.temperature], ks[decision.top_k], decision.lead)

    # ---- save / load ------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write braider.safetensors and braider.json (config, members, families)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(folder / BRAIDER_FILE))
        meta = {"members": self.members, "layers": self.n_layers, "families": self.families,
                "frozen": sorted(self.frozen), "config": self.config.model_dump()}
        atomic_write_text(folder / BRAIDER_JSON, json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, device=None) -> MetaBraider:
        """A braider saved by `save`."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / BRAIDER_JSON).is_file():
            raise EvoloraError(f"'{folder}' holds no saved MetaBraider ({BRAIDER_JSON}).")
        meta = json.loads((folder / BRAIDER_JSON).read_text(encoding="utf-8"))
        braider = cls(meta["members"], meta["layers"], BraiderConfig(**meta["config"]),
                      meta["families"])
        braider.frozen = set(meta.get("frozen", []))
        braider.load_state_dict(load_file(str(folder / BRAIDER_FILE)))
        return braider.to(device) if device is not None else braider
