"""Every command module; importing this package declares the whole API.

Modules are found by walking the package so that adding ``commands/<resource>.py`` is all it
takes to add commands.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
