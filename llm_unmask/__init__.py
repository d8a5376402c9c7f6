"""looking-right: sequence labeling with decoder LLMs whose chosen layers look right.

``apply_unmask(model, "0110")`` removes the causal mask in chosen decoder layer groups (padding stays masked).
"""

__version__ = "0.1.0"

_LAZY = {
    "apply_unmask": "unmask", "remove_unmask": "unmask", "current_plan": "unmask", "parse_unmask": "unmask",
    "layer_groups": "unmask", "UnmaskPlan": "unmask", "load_task": "tasks", "list_tasks": "tasks",
    "load_config": "config", "run_sl": "pipeline", "load_results": "runs", "score": "evaluate",
}


def __getattr__(name):  # keep `import llm_unmask` light; load torch-heavy modules on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = list(_LAZY)  # noqa: PLE0605
