"""The five real model families the format-faithful checkpoints copy (checkpoints.BUILDERS builds
them). A module of its own, so that collecting the tests does not import torch."""

FAMILIES = ("Llama-3.2-1B-Instruct", "Llama-3.1-8B-Instruct", "Qwen2.5-0.5B-Instruct", "Qwen2.5-7B-Instruct",
            "Mistral-7B-Instruct-v0.3")
