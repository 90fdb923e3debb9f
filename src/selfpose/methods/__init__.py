"""Self-supervised methods: the interface (:mod:`.base`), the registry (:mod:`.registry`) and the methods.

``register_method``, ``unregister_method``, ``Method`` and ``MethodError`` are
importable from here; they load on first use, so importing the package does
nothing (no torch import).
"""

_EXPORTS = {"register_method": "registry", "unregister_method": "registry", "method_names": "registry",
            "Method": "base", "MethodError": "base"}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"selfpose.methods.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'selfpose.methods' has no attribute {name!r}")


__all__ = tuple(_EXPORTS)
