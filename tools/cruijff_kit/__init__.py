"""cruijff_kit: LLM fine-tuning experiments from plan to results."""
__version__ = "0.1.0"
