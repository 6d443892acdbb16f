"""Comparison methods: every module in this package registers one builder with srda.registry.

Adding a method is adding a file here (and an entry in config.yaml); nothing else imports it.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
