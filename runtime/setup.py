"""Build meshspec-runtime, compiling its request path with mypyc when it can.

The modules below run on every call (and in every simulated call): compiled, a call through
every policy costs about a third of what it does as plain Python. The same source is the plain
Python fallback, used when compiling is not possible (no C compiler or Python headers), when
``MESHSPEC_NO_EXTENSIONS=1``, and for editable installs (so that an edited module is the one
that runs). Configuration lives in pyproject.toml; this file only adds the extensions.

What the compiled modules must respect (each found the hard way; ``tests/test_compiled_runtime.py``
runs the runtime's tests on the compiled build and catches a slip):
- annotations are checked at run time: a ``cast`` or an ignored type error that lies fails;
- ``raise E from cause`` loses its cause: ``raise caused(E(...), cause)`` (``drivers.classify``);
- no subclasses of builtin exceptions here (they live in plain modules, e.g.
  ``policy/call_state_error.py``), and a class defined here cannot be subclassed by a plain
  module's class (``shared/budget.py`` is compiled for that reason);
- a class used as a dataclass field's type is imported at run time, not under TYPE_CHECKING;
- no attribute named ``_thread`` (its C name is a keyword of the C compiler).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
BUILDS = {"build", "build_ext", "bdist_wheel", "install"}
"""Commands that build the extensions (an editable install's ``editable_wheel`` does not)."""
COMPILED = [
    "meshspec_runtime/policy/backoff.py",
    "meshspec_runtime/policy/breaker.py",
    "meshspec_runtime/policy/budget.py",
    "meshspec_runtime/policy/bulkhead.py",
    "meshspec_runtime/policy/call.py",
    "meshspec_runtime/policy/hedge.py",
    "meshspec_runtime/policy/latency.py",
    "meshspec_runtime/policy/outcome.py",
    "meshspec_runtime/policy/outlier.py",
    "meshspec_runtime/policy/retry_stop.py",
    "meshspec_runtime/policy/throttle.py",
    "meshspec_runtime/policy/upstream.py",
    "meshspec_runtime/policy/windows.py",
    "meshspec_runtime/policy/balancer/base.py",
    "meshspec_runtime/policy/balancer/hashing.py",
    "meshspec_runtime/policy/balancer/least_request.py",
    "meshspec_runtime/policy/balancer/maglev.py",
    "meshspec_runtime/policy/balancer/peak_ewma.py",
    "meshspec_runtime/policy/balancer/random_choice.py",
    "meshspec_runtime/policy/balancer/ring_hash.py",
    "meshspec_runtime/policy/balancer/round_robin.py",
    "meshspec_runtime/policy/balancer/weighted_round_robin.py",
    "meshspec_runtime/drivers/aio.py",
    "meshspec_runtime/drivers/answers.py",
    "meshspec_runtime/drivers/attempt_timer.py",
    "meshspec_runtime/drivers/sync.py",
    "meshspec_runtime/observe/calls.py",
    "meshspec_runtime/shared/budget.py",
    "meshspec_runtime/deadline.py",
    "meshspec_runtime/upstream_handle.py",
    "meshspec_runtime/integrations/httpx_send.py",
    "meshspec_runtime/integrations/requests_send.py",
]


def _not_compiled(error: BaseException) -> None:
    reason = (str(error).splitlines() or [type(error).__name__])[0][:300]
    print(f"meshspec-runtime: not compiled ({reason}); installing plain Python")


class CompileWithMypyc(build_ext):
    """Compiles ``COMPILED`` with mypyc, or nothing: a failed build installs plain Python.

    The extensions are made here rather than in ``setup()`` so that only a build type-checks
    and compiles (not ``egg_info``, not an editable install).
    """

    def finalize_options(self) -> None:
        # ``build_ext`` takes the distribution's extensions as it finalizes: make them first,
        # and only in a run that builds (``egg_info`` finalizes this command too, to list
        # sources).
        building = BUILDS & set(self.distribution.commands)
        skip = self.editable_mode or self.inplace or os.environ.get("MESHSPEC_NO_EXTENSIONS")
        self.distribution.ext_modules = self._mypycify() if building and not skip else []
        super().finalize_options()

    @staticmethod
    def _mypycify() -> list[Extension]:
        try:
            from mypyc.build import mypycify

            # This project's mypy settings, not those of a folder above (a checkout's own
            # are stricter, and would fail on the extras a fresh install lacks).
            return mypycify(["--config-file", "pyproject.toml", *COMPILED], opt_level="3")
        except (Exception, SystemExit) as error:  # mypy missing, or refusing the code
            _not_compiled(error)
            return []

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # a compiler missing or failing, any kind
            self._drop_built()
            _not_compiled(error)

    def _drop_built(self) -> None:
        for extension in self.extensions:
            Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
        self.extensions: list[Extension] = []

    def get_outputs(self) -> list[str]:
        return [path for path in super().get_outputs() if Path(path).exists()]


os.chdir(HERE)  # mypycify and setuptools take paths relative to the project
setup(
    # A stand-in, replaced by mypycify's when building: it tells setuptools the wheel is
    # platform-specific.
    ext_modules=[Extension("meshspec_runtime.policy.call", sources=[])],
    cmdclass={"build_ext": CompileWithMypyc},
)
