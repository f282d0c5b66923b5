"""Every domain's models, imported in one place so ``Base.metadata`` is complete
(Alembic's env.py and the drift test import this module)."""

from server.auth.models import Account, LoginSession, LoginThrottle
from server.db import Base
from server.duty import models as duty_models  # noqa: F401  (registers the duty-call tables)
from server.geo.models import Division, Village
from server.kiosks.models import Kiosk
from server.meetings import models as meetings_models  # noqa: F401  (registers the meeting tables)
from server.notices import models as notices_models  # noqa: F401  (registers the notice tables)
from server.ops import models as ops_models  # noqa: F401  (registers the system-history tables)
from server.ops import retention as ops_retention  # noqa: F401  (registers the retention log)
from server.org.models import Department
from server.petitions import models as petitions_models  # noqa: F401  (registers the petition tables)
from server.rooms import models as rooms_models  # noqa: F401  (registers the room tables)

__all__ = ["Account", "Base", "Department", "Division", "Kiosk", "LoginSession", "LoginThrottle", "Village"]
