"""ecoplan: an analytical capacity planner for LLM serving (NoDG, FuDG and PaDG/EcoServe)."""

__version__ = "0.1.0"
