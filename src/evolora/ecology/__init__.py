"""Evolora's ecology: a colony of LoRA organelles on a frozen host that earns, learns and merges."""
