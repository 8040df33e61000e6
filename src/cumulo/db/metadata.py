"""Every model module, imported so that ``Base.metadata`` knows every table.

Migrations (autogenerate) and anything that needs the whole schema import this module;
a new model module is added here.
"""

from cumulo.db import (  # noqa: F401
    models,
    models_affinity,
    models_agents,
    models_catalog,
    models_compute,
    models_eventbus,
    models_images,
    models_infra,
    models_network,
    models_quota,
    models_routers,
    models_stats,
    models_storage,
    models_tags,
    models_transfers,
    models_usage,
    models_vmsnapshots,
)
from cumulo.db.models import Base

metadata = Base.metadata
