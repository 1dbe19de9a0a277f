"""`ResoEngine`: monitored generation with a Reso model — results with traces, goals and memory.

One step of generation: the cached forward gives next-token logits, the final hidden state and the
extensions' per-token readings; the stability monitor (stability.py) judges the trajectory and, with
`stability.auto_temperature_adjust`, sets the next temperature; the token is drawn (greedy at
temperature 0) from the run's generator. Non-finite logits never reach the sampler: they are
replaced and the step is reported divergent. Several engines can decode together
(`entanglement.py`), so the decoding loop works on a list of `Decoder`s.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from transformers import DynamicCache, PreTrainedTokenizerBase

from evolora.errors import EvoloraError
from evolora.reso import agency as agency_mod
from evolora.reso.model import ResoForCausalLM
from evolora.reso.stability import Reading, StabilityClass, StabilityMonitor


@dataclass
class GenerationResult:
    """Everything one generation produced and measured."""

    text: str
    tokens: list[int]
    tokens_generated: int
    stability: str
    lyapunov: float
    entropy_trace: list[float] = field(default_factory=list)
    lyapunov_trace: list[float] = field(default_factory=list)
    temperature_trace: list[float] = field(default_factory=list)
    coherence_trace: list[float] = field(default_factory=list)
    goals_achieved: list[str] = field(default_factory=list)
    goal_progress: dict[str, float] = field(default_factory=dict)
    attention_summary: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped_layer_fraction: float = 0.0
    generation_time_ms: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


class Decoder:
    """One model's cached decoding state for one prompt (batch of 1)."""

    def __init__(self, engine: ResoEngine, ids: list[int], generator: torch.Generator) -> None:
        self.engine, self.generator = engine, generator
        self.cache = DynamicCache()
        self.context = list(ids)
        self.salience: list[float] = []
        self.hidden: list[torch.Tensor] = []
        self.skipped = [0, 0]
        self.monitor = StabilityMonitor(engine.model.config.sections.stability)
        self.out = self._forward(ids)

    @torch.no_grad()
    def _forward(self, ids: list[int]):
        model = self.engine.model
        tensor = torch.tensor([ids], device=model.device)
        out = model(tensor, cache=self.cache, use_cache=True, noise_generator=self.generator)
        if out.salience is not None:
            self.salience += out.salience[0].tolist()
        self.skipped[0] += model.last_skip[0]
        self.skipped[1] += model.last_skip[1]
        return out

    def logits(self) -> torch.Tensor:
        """The next-token logits (V,) with non-finite entries made finite."""
        return torch.nan_to_num(self.out.logits[0, -1].float(), nan=0.0, posinf=1e4, neginf=-1e4)

    def finite(self) -> bool:
        """Whether the latest logits and hidden state were finite."""
        return bool(torch.isfinite(self.out.logits[0, -1]).all()) and bool(
            torch.isfinite(self.out.final_hidden[0, -1]).all())

    def coherence(self) -> float:
        """The latest Kuramoto order parameter (else PRSC coherence, else 1)."""
        for trace in (self.out.order, self.out.coherence):
            if trace is not None:
                return float(trace[0, -1])
        return 1.0

    def push(self, token: int) -> None:
        """Feed the chosen token."""
        self.hidden.append(self.out.final_hidden[0, -1].float())
        self.context.append(token)
        self.out = self._forward([token])


def entropy(logits: torch.Tensor) -> float:
    """Next-token entropy (nats) of logits (V,)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return float(-(logp.exp() * logp).sum())


def choose(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """Greedy at temperature 0, else a sample at `temperature`."""
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


class ResoEngine:
    """Generation, goals, memory and chat around one Reso model and its tokenizer."""

    def __init__(self, model: ResoForCausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.goals: list[agency_mod.Goal] = []
        self.last_foci: list[agency_mod.Focus] = []

    # ---- goals and memory ----------------------------------------------------------------------
    def create_goal(self, description: str, goal_type: str = "exploratory") -> agency_mod.Goal:
        """An explicit goal from its text (mean input embedding), steering the next generations."""
        if self.model.model.agency is None:
            raise EvoloraError("Goals need the agency layer; set agency.enabled to true.")
        ids = self._encode(description, special=False)
        with torch.no_grad():
            vector = self.model.get_input_embeddings()(torch.tensor(ids, device=self.model.device))
        goal = agency_mod.Goal(description, goal_type, vector.mean(0).float())
        limit = self.model.config.agency["max_goals"]
        self.goals = [*self.goals, goal][-limit:]
        self.model.model.agency.set_goals([g.vector for g in self.goals])
        return goal

    def clear_goals(self) -> None:
        """Drop every explicit goal."""
        self.goals = []
        if self.model.model.agency is not None:
            self.model.model.agency.set_goals([])

    def get_active_goals(self) -> list[agency_mod.Goal]:
        """The explicit goals not yet achieved."""
        return [g for g in self.goals if not g.achieved]

    def get_attention_foci(self) -> list[agency_mod.Focus]:
        """The most salient positions of the last generation's context."""
        return self.last_foci

    def update_memory(self, text: str, importance: float = 1.0) -> None:
        """Write a text into the persistent sedenion memory as one moment (older ones decay)."""
        ids = torch.tensor([self._encode(text, special=True)], device=self.model.device)
        moment = self.model.memory_moment(ids)
        episode = len(self.model.model.memory.log)
        self.model.model.memory.write(moment, text, importance, episode)

    # ---- generation ----------------------------------------------------------------------------
    def _encode(self, text: str, special: bool) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        if not ids:
            raise EvoloraError("The text to encode is empty; give at least one character.")
        limit = self.model.config.max_position_embeddings
        return ids[-(limit // 2):]

    def start(self, prompt: str, seed: int) -> Decoder:
        """A decoder primed with `prompt`."""
        generator = torch.Generator(device=self.model.device).manual_seed(seed)
        return Decoder(self, self._encode(prompt, special=True), generator)

    def generate(self, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0,
                 seed: int = 0, stop: str | None = None) -> GenerationResult:
        """Generate from `prompt` with the stability monitor and the active goals."""
        return decode([self.start(prompt, seed)], max_new_tokens, temperature, stop, 0.0)[0]

    def generate_with_goal(self, prompt: str, goal_description: str, max_new_tokens: int = 64,
                           temperature: float = 0.0, seed: int = 0) -> GenerationResult:
        """Set an explicit goal, generate, and measure the goal's progress."""
        self.create_goal(goal_description)
        return self.generate(prompt, max_new_tokens, temperature, seed)

    def generate_multi_agent(self, prompt: str, other_agents: list[ResoEngine],
                             coordination_strategy: str = "consensus", max_new_tokens: int = 64,
                             temperature: float = 0.0, seed: int = 0) -> list[GenerationResult]:
        """Generate with partner engines (entanglement.py); one result per agent, this one first."""
        from evolora.reso.entanglement import coordinate

        return coordinate([self, *other_agents], prompt, coordination_strategy, max_new_tokens,
                          temperature, seed)


def decode(decoders: list[Decoder], max_new_tokens: int, temperature: float, stop: str | None,
           strength: float) -> list[GenerationResult]:
    """Decode all `decoders` in lockstep. With several, each draws from its own log-probs mixed
    with weight `strength` with the mean of all agents' (consensus); with one it decodes alone."""
    if max_new_tokens < 0 or temperature < 0:
        raise EvoloraError("max_new_tokens and temperature must be >= 0.")
    started = time.perf_counter()
    n = len(decoders)
    temps = [temperature] * n
    traces = [{"entropy": [], "lyapunov": [], "temperature": [], "coherence": []} for _ in range(n)]
    warnings: list[list[str]] = [[] for _ in range(n)]
    readings: list[Reading | None] = [None] * n
    new_tokens: list[list[int]] = [[] for _ in range(n)]
    eos = decoders[0].engine.tokenizer.eos_token_id
    live = [True] * n
    for _ in range(max_new_tokens):
        logps = [torch.log_softmax(d.logits(), -1) for d in decoders]
        for i, d in enumerate(decoders):
            if not live[i]:
                continue
            mixed = logps[i]
            if n > 1:
                pooled = torch.stack(logps).mean(0)
                mixed = (1 - strength) * logps[i] + strength * pooled
            ent = entropy(mixed)
            cfg = d.monitor.config
            if cfg.enabled:
                seen = ent if d.finite() else math.nan
                reading = d.monitor.observe(d.out.final_hidden[0, -1], seen)
                readings[i] = reading
                if reading.warning and reading.warning not in warnings[i]:
                    warnings[i].append(reading.warning)
                if cfg.auto_temperature_adjust:
                    temps[i] = d.monitor.suggested_temperature(temps[i], reading)
                traces[i]["lyapunov"].append(round(reading.lyapunov, 4))
            token = choose(mixed, temps[i], d.generator)
            traces[i]["entropy"].append(round(ent, 4))
            traces[i]["temperature"].append(round(temps[i], 4))
            traces[i]["coherence"].append(round(d.coherence(), 4))
            if token == eos:
                live[i] = False
                continue
            new_tokens[i].append(token)
            d.push(token)
            text = d.engine.tokenizer.decode(new_tokens[i], skip_special_tokens=True)
            if stop and stop in text:
                live[i] = False
        if not any(live):
            break
    elapsed = (time.perf_counter() - started) * 1000
    return [_result(d, new_tokens[i], traces[i], warnings[i], readings[i], stop, elapsed)
            for i, d in enumerate(decoders)]


def _result(d: Decoder, tokens: list[int], trace: dict, warnings: list[str],
            reading: Reading | None, stop: str | None, ms: float) -> GenerationResult:
    engine = d.engine
    text = engine.tokenizer.decode(tokens, skip_special_tokens=True)
    if stop and stop in text:
        text = text[: text.index(stop)]
    achieved, progress = [], {}
    hidden = torch.stack(d.hidden) if d.hidden else torch.zeros(0, engine.model.config.hidden_size)
    for goal in engine.goals:
        goal.progress = agency_mod.progress(hidden, goal.vector)
        goal.achieved = goal.progress >= engine.model.config.agency["achieve_threshold"]
        progress[goal.description] = round(goal.progress, 4)
        if goal.achieved:
            achieved.append(goal.description)
    if d.salience:
        pieces = [engine.tokenizer.decode([t]) for t in d.context[: len(d.salience)]]
        engine.last_foci = agency_mod.foci(torch.tensor(d.salience), pieces,
                                           engine.model.config.agency["max_foci"])
    kind = reading.kind.value if reading is not None else StabilityClass.STABLE.value
    lam = reading.lyapunov if reading is not None else 0.0
    return GenerationResult(
        text=text, tokens=tokens, tokens_generated=len(tokens), stability=kind,
        lyapunov=lam if math.isfinite(lam) else 1e9, entropy_trace=trace["entropy"],
        lyapunov_trace=trace["lyapunov"], temperature_trace=trace["temperature"],
        coherence_trace=trace["coherence"], goals_achieved=achieved, goal_progress=progress,
        attention_summary=[asdict(f) for f in engine.last_foci], warnings=warnings,
        skipped_layer_fraction=d.skipped[0] / max(1, d.skipped[1]), generation_time_ms=ms,
    )
