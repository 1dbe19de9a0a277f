"""evolora.reso: the resonant transformer (Reso-LLM v2) as a transformers causal LM.

Importing this package registers the `reso` model type with transformers' Auto classes, so
`AutoModelForCausalLM.from_pretrained(folder)` and `evolora.hosts.load_host(folder)` load a saved
Reso model like any other host.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM

from evolora.reso.config import PRESETS, ResoConfig, preset_config
from evolora.reso.model import ResoForCausalLM
from evolora.reso.sections import EXTENSIONS

AutoConfig.register("reso", ResoConfig, exist_ok=True)
AutoModelForCausalLM.register(ResoConfig, ResoForCausalLM, exist_ok=True)

__all__ = ["EXTENSIONS", "PRESETS", "ResoConfig", "ResoForCausalLM", "preset_config"]
