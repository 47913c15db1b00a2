"""Start-up time: fairseq imports scikit-learn and ``scipy.stats`` at import time, for two parts
this project never uses (the ``audio_classification`` task and the ``sentence_prediction``
criterion, which fairseq's registries import eagerly). That is 1.3-2 s of the ~5 s a
``ssvp-slt-translate`` run spends importing on this project's 2 shared CPU cores, where a
200-clip test set translates in ~8 s.

:func:`defer_unused_imports` stands in for ``sklearn`` and ``sklearn.metrics`` while fairseq is
imported: the names fairseq takes from them become stand-ins that import the real function
when first called. The stand-in modules are removed from ``sys.modules`` right after, so any
later ``import sklearn`` (a pipeline's own) gets the real package. Nothing happens if
scikit-learn is already imported, is not installed, or fairseq is already imported.
"""

import importlib
import importlib.util
import sys
import types
from contextlib import contextmanager

STUBBED = ("sklearn", "sklearn.metrics", "scipy.stats")


class _Deferred:
    """A name from ``module``, imported on first use."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def _real(self):
        return getattr(importlib.import_module(self._module), self._name)

    def __call__(self, *args, **kwargs):
        return self._real()(*args, **kwargs)

    def __getattr__(self, attr):
        return getattr(self._real(), attr)


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        if full in STUBBED:
            return sys.modules[full]
        return _Deferred(self.__name__, name)


@contextmanager
def defer_unused_imports():
    if "fairseq" in sys.modules:
        yield
        return
    stubs = {}
    for name in STUBBED:
        top = name.split(".")[0]
        if name in sys.modules or importlib.util.find_spec(top) is None:
            continue
        if "." in name and top not in STUBBED and top not in sys.modules:
            importlib.import_module(top)  # a real parent package (scipy itself is cheap; scipy.stats is not)
        if "." in name and top in STUBBED and top not in stubs:
            continue
        stubs[name] = _StubModule(name)
        stubs[name].__path__ = []  # a package, so that its submodules can be looked up
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
